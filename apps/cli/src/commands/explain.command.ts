import { Module } from '@nestjs/common';
import { Command, CommandRunner, Option } from 'nest-commander';
import { MikroORM, type EntityManager } from '@mikro-orm/postgresql';
import { isUuid } from '@closebook/platform';
import { ExplanationModule, ExplanationService, type ExplanationDocument } from '@closebook/traceability';
import { print } from '../output';

interface ExplainOptions {
  invoice?: string;
  line?: string;
  org?: string;
  events?: number;
  json?: boolean;
}

const m = (x: { amount: string; currency: string } | null | undefined) => (x ? `${x.amount} ${x.currency}` : '-');
const day = (s: string | null | undefined) => (s ? s.slice(0, 10) : '-');
/** A service period [start, end) shown with its last day, as invoices show it. */
const span = (p: { start: string; end: string }) => `${day(p.start)} – ${day(new Date(Date.parse(p.end) - 1).toISOString())}`;

/** The explanation as a report for a person: one section per question. */
export function explanationReport(doc: ExplanationDocument): string[] {
  const out: string[] = [];
  const h = (title: string) => out.push('', `== ${title}`);
  const l = doc.line;
  out.push(`Invoice ${doc.invoice.number ?? doc.invoice.id} (${doc.invoice.kind}, ${doc.invoice.status}), line ${l.position}: ${l.description}`);

  h('Line');
  out.push(`  id            ${l.id}`);
  out.push(`  type          ${l.type}${l.product_key ? ` (${l.product_key}${l.price_key ? `, ${l.price_key}` : ''})` : ''}`);
  out.push(`  period        ${span(l.period)}`);
  out.push(`  quantity      ${l.quantity}${l.unit ? ` ${l.unit}` : ''}${l.unit_amount !== null ? ` × ${l.unit_amount}` : ''}`);
  if (l.tiers?.length) for (const t of l.tiers as { tier: number; quantity: string; unit_amount: string; amount: string }[]) out.push(`  tier ${t.tier}        ${t.quantity} × ${t.unit_amount} = ${t.amount}`);
  if (l.proration) out.push(`  proration     ${String((l.proration as { label?: string }).label ?? '')}`);
  out.push(`  amount        ${m(l.amount)} (exact ${l.amount_exact})`);
  out.push(`  replay        ${doc.replay.matches_stored ? 'matches the stored amount' : `DOES NOT MATCH (replayed ${doc.replay.amount ?? '-'}, stored ${doc.replay.stored_amount})`}`);

  h('Customer, subscription, plan');
  out.push(`  customer      ${doc.customer.name} (${doc.customer.external_id}, ${doc.customer.id})`);
  out.push(`  subscription  ${doc.subscription.id} (${doc.subscription.status}, since ${day(doc.subscription.started_at)})`);
  const p = doc.subscription.plan;
  out.push(`  plan          ${p ? `${p.plan_key} v${p.version ?? '?'}${p.plan_version_id ? ` (${p.plan_version_id})` : ''}` : '-'}`);
  for (const s of doc.subscription.segments) out.push(`  segment       ${day(s.from)} – ${day(new Date(Date.parse(s.to) - 1).toISOString())} ${s.plan_key} v${s.version ?? '?'}: ${s.fraction}${s.transition ? ` (${s.transition})` : ''}`);
  if (doc.price) out.push(`  price         ${JSON.stringify(doc.price)}`);
  if (doc.source) out.push(`  source        ${String(doc.source.type)} ${String(doc.source.id)}`);

  h('Computation');
  for (const s of doc.steps) out.push(`  ${String(s.number).padStart(2)}. ${s.text}`);

  if (doc.late_usage.length) {
    h('Late usage');
    for (const u of doc.late_usage) {
      out.push(`  ${u.id} ${u.status}: ${u.product_key} ${day(u.period_start)} billed ${u.billed_quantity}, now ${u.quantity} (+${u.quantity_delta}) → ${m(u.amount)} on invoice ${u.invoice_id}`);
      for (const side of ['current', 'previous'] as const) {
        for (const r of u.rerating[side]) out.push(`    ${side} ${r.line_key}: ${r.amount}`);
      }
    }
  }

  h('Rollups');
  if (!doc.rollups.length) out.push('  (none: this line is not rated from usage)');
  for (const r of doc.rollups) {
    const rated = r.at_rating ? `rated ${r.at_rating.event_count} events, aggregate ${r.at_rating.aggregate}, digest ${r.at_rating.digest}` : 'not rated';
    const now = r.now ? `now ${r.now.event_count} events, aggregate ${r.now.aggregate}, digest ${r.now.digest}` : '';
    out.push(`  ${r.rollup_id} ${r.product_key}${r.price_key ? `/${r.price_key}` : ''} (${r.aggregation}, ${r.via}): ${rated}; ${now}${r.changed_since_rating ? ' (changed since rating)' : ''}`);
  }

  h(`Events (${doc.events.data.length} shown of ${doc.events.total})`);
  for (const e of doc.events.data) out.push(`  ${e.timestamp} ${e.event_id} ${e.event_name} ${JSON.stringify(e.properties)}${e.late ? ' (late)' : ''}`);
  if (doc.events.next_cursor) out.push(`  … more: GET /v1/invoices/${doc.invoice.id}/lines/${l.id}/events?cursor=${doc.events.next_cursor}`);

  h('Ledger entries');
  if (!doc.ledger.entries.length) out.push('  (none)');
  for (const e of doc.ledger.entries) {
    out.push(`  ${e.date} ${e.key} (${e.relation}): ${e.description}`);
    for (const x of e.lines) out.push(`    ${x.account_code} ${x.account_name.padEnd(32)} Dr ${x.debit.amount.padStart(12)}  Cr ${x.credit.amount.padStart(12)}`);
  }
  for (const s of doc.ledger.deferral_schedules) out.push(`  deferral schedule ${s.key}: ${m(s.total)} over ${s.service_start} – ${s.service_end}`);

  h('Credit notes, exceptions, disputes');
  if (!doc.credit_notes.length && !doc.exceptions.length && !doc.disputes.length) out.push('  (none)');
  for (const c of doc.credit_notes) out.push(`  credit note ${c.number}: ${m(c.amount)} — ${c.reason}`);
  for (const x of doc.exceptions) out.push(`  exception ${x.id} [${x.status}] ${x.type}: ${x.title ?? ''}${x.queue ? ` (queue ${x.queue.key})` : ''}`);
  for (const x of doc.disputes) out.push(`  dispute ${x.id} [${x.status}]: ${x.title ?? ''}${x.queue ? ` (queue ${x.queue.key})` : ''}`);
  if (!doc.exceptions_available) out.push('  (exceptions are not set up in this database)');

  h('Escalation');
  const esc = doc.escalation;
  out.push(esc ? `  ${esc.name ?? esc.key}: owner ${esc.owner ?? '-'}, escalation contact ${esc.escalation_contact ?? '-'}${esc.sla_hours !== null ? `, SLA ${esc.sla_hours} h` : ''} (${esc.reason.replace('_', ' ')})` : '  (no queue owns this line)');
  return out;
}

@Command({ name: 'explain', description: 'What produced this charge: explain one invoice line (steps, rollups, events, ledger, escalation)' })
export class ExplainCommand extends CommandRunner {
  constructor(private readonly explanations: ExplanationService, private readonly orm: MikroORM) {
    super();
  }

  async run(_: string[], opts: ExplainOptions): Promise<void> {
    if (!opts.invoice || !opts.line) throw new Error('--invoice and --line are required');
    const em = this.orm.em.fork() as EntityManager;
    let org = opts.org;
    if (!org) {
      // An operator's tool: the invoice names its organization.
      const rows = isUuid(opts.invoice) ? await em.execute<{ organization_id: string }[]>('select organization_id from invoices where id = ?', [opts.invoice]) : [];
      if (!rows.length) throw new Error(`invoice ${opts.invoice} was not found`);
      org = rows[0].organization_id;
    }
    const doc = await this.explanations.explain(em, org, opts.invoice, opts.line, { events: { limit: opts.events ?? 10 } });
    print(opts.json, doc, explanationReport(doc));
  }

  @Option({ flags: '--invoice <id>', description: 'invoice id', required: true })
  parseInvoice(v: string) {
    return v;
  }

  @Option({ flags: '--line <id>', description: 'invoice line id', required: true })
  parseLine(v: string) {
    return v;
  }

  @Option({ flags: '--org <id>', description: "organization id (default: the invoice's)" })
  parseOrg(v: string) {
    return v;
  }

  @Option({ flags: '--events <n>', description: 'events to show (1..500, default 10)' })
  parseEvents(v: string) {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > 500) throw new Error('--events must be an integer 1..500');
    return n;
  }

  @Option({ flags: '--json', description: 'print JSON' })
  parseJson() {
    return true;
  }
}

/** The `explain` command with what it needs. */
@Module({ imports: [ExplanationModule], providers: [ExplainCommand] })
export class ExplainCliModule {}
