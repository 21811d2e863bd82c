import { Migration } from '@mikro-orm/migrations';

/** The ledger: accounts, journal entries and lines, accounting periods, deferral schedules (docs/ledger.md). */
export class Migration20261123190500_ledger extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "accounting_periods" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "period" text not null, "status" text check ("status" in ('open', 'closing', 'closed')) not null default 'open', "closing_started_at" timestamptz null, "closed_at" timestamptz null, "reopened_at" timestamptz null, "reopen_reason" text null, "updated_at" timestamptz not null default now(), constraint "accounting_periods_pkey" primary key ("id"), constraint accounting_periods_period_check check (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])\$'));`);
    this.addSql(`create index "accounting_periods_organization_id_index" on "accounting_periods" ("organization_id");`);
    this.addSql(`alter table "accounting_periods" add constraint "accounting_periods_organization_id_period_unique" unique ("organization_id", "period");`);
    this.addSql(`create table "deferral_schedules" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "currency" text not null, "key" text not null, "source_type" text not null, "source_id" text not null, "description" text not null, "total_minor" bigint not null, "service_start" date not null, "service_end" date not null, "from_account" text not null, "to_account" text not null, "party_id" uuid null, "final_period" text not null, constraint "deferral_schedules_pkey" primary key ("id"), constraint deferral_schedules_service_period_check check (service_end > service_start), constraint deferral_schedules_total_minor_check check (total_minor > 0));`);
    this.addSql(`create index "deferral_schedules_organization_id_index" on "deferral_schedules" ("organization_id");`);
    this.addSql(`create index "deferral_schedules_organization_id_service_start_index" on "deferral_schedules" ("organization_id", "service_start");`);
    this.addSql(`create index "deferral_schedules_organization_id_source_type_source_id_index" on "deferral_schedules" ("organization_id", "source_type", "source_id");`);
    this.addSql(`alter table "deferral_schedules" add constraint "deferral_schedules_organization_id_key_unique" unique ("organization_id", "key");`);
    this.addSql(`create table "journal_entries" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "currency" text not null, "entry_date" date not null, "key" text not null, "source_type" text not null, "source_id" text not null, "description" text not null, "reverses_entry_id" uuid null, "corrects_period" text null, constraint "journal_entries_pkey" primary key ("id"), constraint journal_entries_corrects_period_check check (corrects_period ~ '^[0-9]{4}-(0[1-9]|1[0-2])\$'));`);
    this.addSql(`create index "journal_entries_organization_id_index" on "journal_entries" ("organization_id");`);
    this.addSql(`create index "journal_entries_organization_id_created_at_index" on "journal_entries" ("organization_id", "created_at");`);
    this.addSql(`create index "journal_entries_organization_id_source_type_source_id_index" on "journal_entries" ("organization_id", "source_type", "source_id");`);
    this.addSql(`create index "journal_entries_organization_id_entry_date_index" on "journal_entries" ("organization_id", "entry_date");`);
    this.addSql(`alter table "journal_entries" add constraint "journal_entries_reverses_entry_id_unique" unique ("reverses_entry_id");`);
    this.addSql(`alter table "journal_entries" add constraint "journal_entries_organization_id_key_unique" unique ("organization_id", "key");`);
    this.addSql(`create table "ledger_accounts" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "currency" text not null, "code" text not null, "name" text not null, "type" text check ("type" in ('asset', 'liability', 'equity', 'revenue', 'contra_revenue', 'expense')) not null, "normal_balance" text check ("normal_balance" in ('debit', 'credit')) not null, "requires_party" boolean not null default false, constraint "ledger_accounts_pkey" primary key ("id"));`);
    this.addSql(`create index "ledger_accounts_organization_id_index" on "ledger_accounts" ("organization_id");`);
    this.addSql(`alter table "ledger_accounts" add constraint "ledger_accounts_organization_id_currency_code_unique" unique ("organization_id", "currency", "code");`);
    this.addSql(`create table "journal_lines" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "entry_id" uuid not null, "line_no" int not null, "account_id" uuid not null, "party_id" uuid null, "debit" bigint not null, "credit" bigint not null, "memo" text null, constraint "journal_lines_pkey" primary key ("id"), constraint journal_lines_amounts_check check (debit >= 0 and credit >= 0 and (debit > 0) <> (credit > 0)));`);
    this.addSql(`create index "journal_lines_organization_id_index" on "journal_lines" ("organization_id");`);
    this.addSql(`create index "journal_lines_account_id_party_id_index" on "journal_lines" ("account_id", "party_id");`);
    this.addSql(`alter table "journal_lines" add constraint "journal_lines_entry_id_line_no_unique" unique ("entry_id", "line_no");`);
    this.addSql(`alter table "journal_entries" add constraint "journal_entries_reverses_entry_id_foreign" foreign key ("reverses_entry_id") references "journal_entries" ("id") on update cascade on delete restrict;`);
    this.addSql(`alter table "journal_lines" add constraint "journal_lines_entry_id_foreign" foreign key ("entry_id") references "journal_entries" ("id") on update cascade on delete restrict;`);
    this.addSql(`alter table "journal_lines" add constraint "journal_lines_account_id_foreign" foreign key ("account_id") references "ledger_accounts" ("id") on update cascade on delete restrict;`);

    // Hand-written: what the entity metadata cannot express.

    // Period locks. Postings take a shared advisory lock per (organization, month); closing a month
    // takes it exclusively (trigger below), so a close waits for in-flight postings dated in the
    // month and postings that follow see it closed. The service and the triggers use the same key.
    this.addSql(`create function ledger_lock_period_shared(p_org uuid, p_period text) returns void language plpgsql as $$
      begin
        perform pg_advisory_xact_lock_shared(hashtext('closebook.ledger.period'), hashtext(p_org::text || ':' || p_period));
      end $$;`);
    this.addSql(`create function ledger_assert_period_open(p_org uuid, p_date date) returns void language plpgsql as $$
      declare
        v_period text := to_char(p_date, 'YYYY-MM');
      begin
        perform ledger_lock_period_shared(p_org, v_period);
        if exists (select 1 from accounting_periods where organization_id = p_org and period = v_period and status = 'closed') then
          raise exception 'accounting period % is closed: nothing dated % can be written', v_period, p_date
            using errcode = 'check_violation', constraint = 'ledger_period_closed';
        end if;
      end $$;`);

    // Nothing is written dated inside a closed month: checked on entries and on lines.
    this.addSql(`create function ledger_journal_entries_guard() returns trigger language plpgsql as $$
      begin
        perform ledger_assert_period_open(new.organization_id, new.entry_date);
        if new.reverses_entry_id is not null and not exists (
             select 1 from journal_entries r where r.id = new.reverses_entry_id and r.organization_id = new.organization_id and r.currency = new.currency) then
          raise exception 'journal entry % reverses % which is not an entry of its organization and currency', new.id, new.reverses_entry_id
            using errcode = 'check_violation', constraint = 'journal_entry_reversal';
        end if;
        return new;
      end $$;`);
    this.addSql(`create trigger journal_entries_guard before insert on "journal_entries"
      for each row execute function ledger_journal_entries_guard();`);

    // A line belongs to its entry's organization, to an account of that organization and currency,
    // names its party on a party-bearing account (Accounts receivable), and is not dated in a closed month.
    this.addSql(`create function ledger_journal_lines_guard() returns trigger language plpgsql as $$
      declare
        e record;
        a record;
      begin
        select organization_id, currency, entry_date into e from journal_entries where id = new.entry_id;
        if not found then
          raise exception 'journal line % names unknown entry %', new.id, new.entry_id using errcode = 'foreign_key_violation';
        end if;
        if e.organization_id <> new.organization_id then
          raise exception 'journal line % is not of its entry''s organization', new.id
            using errcode = 'check_violation', constraint = 'journal_line_organization';
        end if;
        perform ledger_assert_period_open(e.organization_id, e.entry_date);
        select organization_id, currency, code, requires_party into a from ledger_accounts where id = new.account_id;
        if not found then
          raise exception 'journal line % names unknown account %', new.id, new.account_id using errcode = 'foreign_key_violation';
        end if;
        if a.organization_id <> new.organization_id or a.currency <> e.currency then
          raise exception 'account % (%) is not an account of the entry''s organization and currency (%)', a.code, a.currency, e.currency
            using errcode = 'check_violation', constraint = 'journal_line_account';
        end if;
        if a.requires_party and new.party_id is null then
          raise exception 'account % requires a party_id on every line', a.code
            using errcode = 'check_violation', constraint = 'journal_line_party_required';
        end if;
        return new;
      end $$;`);
    this.addSql(`create trigger journal_lines_guard before insert on "journal_lines"
      for each row execute function ledger_journal_lines_guard();`);

    // Balanced entries, checked at commit (DEFERRABLE INITIALLY DEFERRED): at least two lines,
    // debits = credits, and every line written by the transaction that wrote the entry (no line
    // can be added to a posted entry later, even a balanced pair).
    this.addSql(`create function ledger_check_entry_balanced() returns trigger language plpgsql as $$
      declare
        v_entry uuid;
        s record;
      begin
        if tg_table_name = 'journal_entries' then v_entry := new.id; else v_entry := new.entry_id; end if;
        select count(l.id) as n, coalesce(sum(l.debit), 0) as debits, coalesce(sum(l.credit), 0) as credits,
               coalesce(bool_and(l.xmin = e.xmin), true) as same_tx
          into s
          from journal_entries e left join journal_lines l on l.entry_id = e.id
         where e.id = v_entry;
        if s.n < 2 then
          raise exception 'journal entry % has % line(s); an entry needs at least two', v_entry, s.n
            using errcode = 'check_violation', constraint = 'journal_entry_min_lines';
        end if;
        if s.debits <> s.credits then
          raise exception 'journal entry % is unbalanced: debits % <> credits %', v_entry, s.debits, s.credits
            using errcode = 'check_violation', constraint = 'journal_entry_balanced';
        end if;
        if not s.same_tx then
          raise exception 'journal entry % is posted: lines are written only with their entry', v_entry
            using errcode = 'check_violation', constraint = 'journal_entry_posted';
        end if;
        return null;
      end $$;`);
    this.addSql(`create constraint trigger journal_entries_balanced after insert on "journal_entries"
      deferrable initially deferred for each row execute function ledger_check_entry_balanced();`);
    this.addSql(`create constraint trigger journal_lines_balanced after insert on "journal_lines"
      deferrable initially deferred for each row execute function ledger_check_entry_balanced();`);

    // Posted entries, their lines and deferral schedules are immutable: corrections are new entries.
    for (const table of ['journal_entries', 'journal_lines', 'deferral_schedules']) {
      this.addSql(`create trigger ${table}_immutable before update or delete on "${table}"
        for each row execute function closebook_reject_change();`);
      this.addSql(`create trigger ${table}_no_truncate before truncate on "${table}"
        for each statement execute function closebook_reject_change();`);
    }

    // An account keeps its identity (organization, currency, code, type, normal balance, party rule).
    this.addSql(`create function ledger_accounts_guard() returns trigger language plpgsql as $$
      begin
        if tg_op = 'DELETE' or new.organization_id <> old.organization_id or new.currency <> old.currency or new.code <> old.code
           or new.type <> old.type or new.normal_balance <> old.normal_balance or new.requires_party <> old.requires_party then
          raise exception 'ledger account %: only its name may change (% refused)', old.code, tg_op using errcode = 'check_violation';
        end if;
        return new;
      end $$;`);
    this.addSql(`create trigger ledger_accounts_guard before update or delete on "ledger_accounts"
      for each row execute function ledger_accounts_guard();`);

    // Closing a month takes its exclusive lock; a period row is never deleted (that would unlock it).
    this.addSql(`create function ledger_accounting_periods_guard() returns trigger language plpgsql as $$
      begin
        if tg_op = 'UPDATE' and (new.organization_id <> old.organization_id or new.period <> old.period) then
          raise exception 'an accounting period''s organization and month never change' using errcode = 'check_violation';
        end if;
        if new.status = 'closed' and (tg_op = 'INSERT' or old.status <> 'closed') then
          perform pg_advisory_xact_lock(hashtext('closebook.ledger.period'), hashtext(new.organization_id::text || ':' || new.period));
        end if;
        return new;
      end $$;`);
    this.addSql(`create trigger accounting_periods_guard before insert or update on "accounting_periods"
      for each row execute function ledger_accounting_periods_guard();`);
    this.addSql(`create trigger accounting_periods_no_delete before delete on "accounting_periods"
      for each row execute function closebook_reject_change();`);
    this.addSql(`create trigger accounting_periods_no_truncate before truncate on "accounting_periods"
      for each statement execute function closebook_reject_change();`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "journal_lines" cascade;`);
    this.addSql(`drop table if exists "journal_entries" cascade;`);
    this.addSql(`drop table if exists "ledger_accounts" cascade;`);
    this.addSql(`drop table if exists "deferral_schedules" cascade;`);
    this.addSql(`drop table if exists "accounting_periods" cascade;`);
    this.addSql(`drop function if exists ledger_check_entry_balanced() cascade;`);
    this.addSql(`drop function if exists ledger_journal_lines_guard() cascade;`);
    this.addSql(`drop function if exists ledger_journal_entries_guard() cascade;`);
    this.addSql(`drop function if exists ledger_accounts_guard() cascade;`);
    this.addSql(`drop function if exists ledger_accounting_periods_guard() cascade;`);
    this.addSql(`drop function if exists ledger_assert_period_open(uuid, date) cascade;`);
    this.addSql(`drop function if exists ledger_lock_period_shared(uuid, text) cascade;`);
  }

}
