import { Injectable } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { AppConfig } from '../config/app-config';
import { AuditService } from '../audit/audit.service';
import { NotFoundError, ValidationError } from '../errors/domain-error';
import { RequestScopes } from '../context/request-context';
import { Organization } from './organization.entity';
import { ApiKeysService, type CreatedApiKey } from './api-keys.service';

/** Hooks other modules register to seed a new organization (ledger chart, default exception queues...). */
export const ORGANIZATION_SEEDERS = Symbol('ORGANIZATION_SEEDERS');
export interface OrganizationSeeder {
  seed(em: EntityManager, organizationId: string): Promise<void>;
}

@Injectable()
export class OrganizationsService {
  private readonly seeders: OrganizationSeeder[] = [];

  constructor(
    private readonly config: AppConfig,
    private readonly audit: AuditService,
    private readonly apiKeys: ApiKeysService,
  ) {}

  registerSeeder(seeder: OrganizationSeeder) {
    this.seeders.push(seeder);
  }

  /** Creates an organization with its first admin key, in one transaction. */
  async createWithAdminKey(em: EntityManager, name: string): Promise<{ organization: Organization; adminKey: CreatedApiKey }> {
    const trimmed = name.trim();
    if (!trimmed || trimmed.length > 200) {
      throw new ValidationError('invalid_name', 'name must be 1-200 characters', 'name');
    }
    return em.transactional(async (tx) => {
      const organization = tx.create(Organization, { name: trimmed, draftWindowMinutes: this.config.draftWindowMinutes });
      await tx.flush();
      const scope = RequestScopes.current();
      const audited = () =>
        this.audit.record(tx, {
          organizationId: organization.id,
          action: 'organization.created',
          resourceType: 'organization',
          resourceId: organization.id,
          data: { name: trimmed },
        });
      if (scope) audited();
      else RequestScopes.run({ requestId: `cli:${organization.id}`, principal: { organizationId: organization.id, keyId: null, role: 'system', actor: 'cli' } }, audited);
      for (const seeder of this.seeders) await seeder.seed(tx, organization.id);
      const adminKey = await this.apiKeys.create(tx, organization.id, 'admin', 'initial admin key');
      return { organization, adminKey };
    });
  }

  async get(em: EntityManager, organizationId: string): Promise<Organization> {
    const org = await em.findOne(Organization, { id: organizationId });
    if (!org) throw new NotFoundError('organization', organizationId);
    return org;
  }
}
