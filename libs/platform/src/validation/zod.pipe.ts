import { ArgumentMetadata, Body, PipeTransform, Query } from '@nestjs/common';
import { z } from 'zod';
import { parseOrThrow } from './zod-validation';

export const ZOD_SCHEMA = Symbol('zod-schema');

export class ZodPipe<S extends z.ZodType> implements PipeTransform {
  constructor(readonly schema: S, readonly where: 'body' | 'query' | 'params') {}
  transform(value: unknown, _meta: ArgumentMetadata): z.infer<S> {
    return parseOrThrow(this.schema, value, this.where);
  }
}

/** `@ZBody(schema)`: the body validated (unknown fields refused when the schema is strict). */
export const ZBody = <S extends z.ZodType>(schema: S) => Body(new ZodPipe(schema, 'body'));
export const ZQuery = <S extends z.ZodType>(schema: S) => Query(new ZodPipe(schema, 'query'));
