import { Injectable } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { randomUUID } from 'node:crypto';
import { afterCursor, AuditService, ConflictError, decodeCursor, isUuid, NotFoundError } from '@closebook/platform';
import { ExceptionQueue } from './entities/exception-queue.entity';
import { DEFAULT_QUEUES, DEFAULT_ROUTING, type EvidenceRequirement, type ExceptionType, type ReviewCadence } from './model';

export interface QueueInput {
  key: string;
  name: string;
  owner: string;
  escalation_contact: string;
  review_cadence: ReviewCadence;
  sla_hours: number;
  required_evidence: EvidenceRequirement[];
  exception_types: ExceptionType[];
}
export type QueueUpdate = Partial<Omit<QueueInput, 'key'>>;

/** The queue an exception type is routed to, with what opening an item there needs. */
export interface RoutedQueue {
  id: string;
  key: string;
  slaHours: number;
}

const violated = (e: unknown): string | undefined => {
  const c = (e as { constraint?: unknown } | null)?.constraint;
  return typeof c === 'string' ? c : undefined;
};

/**
 * Owned exception queues (SPEC §6): the defaults every organization gets (created lazily and
 * idempotently, INSERT … ON CONFLICT DO NOTHING), custom queues, and the routing of each exception
 * type to exactly one queue of the organization.
 */
@Injectable()
export class ExceptionQueuesService {
  constructor(private readonly audit: AuditService) {}

  /** Creates the default queues the organization lacks (by key); safe to call any number of times, concurrently. */
  async ensureDefaults(em: EntityManager, organizationId: string): Promise<number> {
    const rows = DEFAULT_QUEUES.map((q) => ({
      id: randomUUID(),
      key: q.key,
      name: q.name,
      owner: q.owner,
      escalation_contact: q.escalationContact,
      review_cadence: q.reviewCadence,
      sla_hours: q.slaHours,
      required_evidence: q.requiredEvidence,
      exception_types: q.exceptionTypes,
    }));
    const inserted = await em.execute<{ id: string }[]>(
      `insert into exception_queues (id, created_at, updated_at, organization_id, key, name, owner, escalation_contact, review_cadence, sla_hours, required_evidence, exception_types)
       select x.id, now(), now(), ?, x.key, x.name, x.owner, x.escalation_contact, x.review_cadence, x.sla_hours, x.required_evidence,
              array(select jsonb_array_elements_text(x.exception_types))
       from jsonb_to_recordset(?::jsonb) as x(id uuid, key text, name text, owner text, escalation_contact text, review_cadence text,
                                              sla_hours int, required_evidence jsonb, exception_types jsonb)
       on conflict (organization_id, key) do nothing
       returning id`,
      [organizationId, JSON.stringify(rows)],
    );
    return inserted.length;
  }

  /** type → queue for the organization (defaults ensured first). A type no queue lists goes to its default queue. */
  async routing(em: EntityManager, organizationId: string): Promise<Map<ExceptionType, RoutedQueue>> {
    await this.ensureDefaults(em, organizationId);
    const queues = await em.execute<{ id: string; key: string; sla_hours: number; exception_types: string[] }[]>(
      `select id, key, sla_hours, exception_types from exception_queues where organization_id = ? order by created_at, id`,
      [organizationId],
    );
    const map = new Map<ExceptionType, RoutedQueue>();
    for (const q of queues) {
      for (const t of q.exception_types) if (!map.has(t as ExceptionType)) map.set(t as ExceptionType, { id: q.id, key: q.key, slaHours: q.sla_hours });
    }
    for (const [type, key] of Object.entries(DEFAULT_ROUTING)) {
      if (map.has(type as ExceptionType)) continue;
      const q = queues.find((x) => x.key === key);
      if (q) map.set(type as ExceptionType, { id: q.id, key: q.key, slaHours: q.sla_hours });
    }
    return map;
  }

  async list(em: EntityManager, organizationId: string, q: { limit: number; cursor?: string }): Promise<ExceptionQueue[]> {
    await this.ensureDefaults(em, organizationId);
    return em.find(ExceptionQueue, { organizationId, ...afterCursor(decodeCursor(q.cursor)) }, { orderBy: { createdAt: 'desc', id: 'desc' }, limit: q.limit + 1 });
  }

  /** By id or by key. */
  async get(em: EntityManager, organizationId: string, idOrKey: string): Promise<ExceptionQueue> {
    await this.ensureDefaults(em, organizationId);
    const queue = await em.findOne(ExceptionQueue, isUuid(idOrKey) ? { organizationId, id: idOrKey } : { organizationId, key: idOrKey });
    if (!queue) throw new NotFoundError('exception queue', idOrKey);
    return queue;
  }

  async create(em: EntityManager, organizationId: string, input: QueueInput): Promise<ExceptionQueue> {
    await this.ensureDefaults(em, organizationId);
    return em.transactional(async (tx) => {
      if (await tx.count(ExceptionQueue, { organizationId, key: input.key })) {
        throw new ConflictError('queue_key_taken', `an exception queue with key "${input.key}" already exists`, 'key');
      }
      await this.assertTypesFree(tx, organizationId, input.exception_types, null);
      const queue = tx.create(ExceptionQueue, {
        organizationId,
        key: input.key,
        name: input.name,
        owner: input.owner,
        escalationContact: input.escalation_contact,
        reviewCadence: input.review_cadence,
        slaHours: input.sla_hours,
        requiredEvidence: input.required_evidence,
        exceptionTypes: [...new Set(input.exception_types)],
      });
      this.audit.record(tx, { organizationId, action: 'exception_queue.created', resourceType: 'exception_queue', resourceId: queue.id, data: { ...input } });
      try {
        await tx.flush();
      } catch (e) {
        if (violated(e) === 'exception_queues_organization_id_key_unique') {
          throw new ConflictError('queue_key_taken', `an exception queue with key "${input.key}" already exists`, 'key');
        }
        throw e;
      }
      return queue;
    });
  }

  async update(em: EntityManager, organizationId: string, idOrKey: string, input: QueueUpdate): Promise<ExceptionQueue> {
    const found = await this.get(em, organizationId, idOrKey);
    return em.transactional(async (tx) => {
      const queue = await tx.findOneOrFail(ExceptionQueue, { id: found.id }, { refresh: true });
      if (input.exception_types) await this.assertTypesFree(tx, organizationId, input.exception_types, queue.id);
      const changes: Record<string, unknown> = {};
      const set = <K extends keyof ExceptionQueue>(k: K, v: ExceptionQueue[K] | undefined, name: string) => {
        if (v === undefined) return;
        changes[name] = { from: queue[k], to: v };
        queue[k] = v;
      };
      set('name', input.name, 'name');
      set('owner', input.owner, 'owner');
      set('escalationContact', input.escalation_contact, 'escalation_contact');
      set('reviewCadence', input.review_cadence, 'review_cadence');
      set('slaHours', input.sla_hours, 'sla_hours');
      set('requiredEvidence', input.required_evidence, 'required_evidence');
      set('exceptionTypes', input.exception_types ? [...new Set(input.exception_types)] : undefined, 'exception_types');
      queue.updatedAt = new Date();
      this.audit.record(tx, { organizationId, action: 'exception_queue.updated', resourceType: 'exception_queue', resourceId: queue.id, data: { key: queue.key, changes } });
      await tx.flush();
      return queue;
    });
  }

  /** A type is routed to one queue of the organization at most: 409 when another queue lists it. */
  private async assertTypesFree(em: EntityManager, organizationId: string, types: ExceptionType[], exceptQueueId: string | null) {
    if (!types.length) return;
    const taken = await em.execute<{ key: string; type: string }[]>(
      `select q.key, t.type from exception_queues q cross join lateral unnest(q.exception_types) as t(type)
       where q.organization_id = ? and t.type in (select jsonb_array_elements_text(?::jsonb)) and (?::uuid is null or q.id <> ?::uuid) order by t.type`,
      [organizationId, JSON.stringify(types), exceptQueueId, exceptQueueId],
    );
    if (taken.length) {
      throw new ConflictError(
        'type_already_routed',
        `exception type ${taken[0].type} is already routed to queue "${taken[0].key}"; remove it there first`,
        'exception_types',
        { routed: taken.map((t) => ({ type: t.type, queue: t.key })) },
      );
    }
  }
}
