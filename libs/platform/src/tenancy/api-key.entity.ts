import { Entity, Enum, Property } from '@mikro-orm/core';
import { TenantEntity } from '../database/base.entity';
import { ROLES, type Role } from '../auth/roles';

@Entity({ tableName: 'api_keys' })
export class ApiKey extends TenantEntity {
  @Enum({ items: [...ROLES] })
  role!: Role;

  @Property({ type: 'text', nullable: true })
  name?: string | null;

  /** The first characters of the key, so a person can tell keys apart; never enough to use it. */
  @Property({ type: 'text' })
  prefix!: string;

  /** SHA-256 of the whole key. Keys are 256 random bits, so a fast hash is not brute-forceable. */
  @Property({ type: 'text', unique: true })
  keyHash!: string;

  @Property({ type: 'timestamptz', nullable: true })
  revokedAt?: Date | null;
}
