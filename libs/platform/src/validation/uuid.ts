import { Param, PipeTransform } from '@nestjs/common';
import { NotFoundError } from '../errors/domain-error';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const isUuid = (s: unknown): s is string => typeof s === 'string' && UUID.test(s);

/** A path id that is not a UUID names nothing: 404, before it can reach PostgreSQL as a cast error. */
export class UuidOr404Pipe implements PipeTransform<string, string> {
  constructor(private readonly resource: string) {}
  transform(value: string): string {
    if (!isUuid(value)) throw new NotFoundError(this.resource, String(value));
    return value;
  }
}

export const UuidParam = (name: string, resource: string) => Param(name, new UuidOr404Pipe(resource));
