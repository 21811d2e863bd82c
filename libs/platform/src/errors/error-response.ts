import { HttpException, HttpStatus } from '@nestjs/common';
import { MoneyError } from '@closebook/money';
import { DomainError, ReplayedError } from './domain-error';

export interface ErrorBody {
  error: { code: string; message: string; field: string | null; details?: Record<string, unknown> };
}

export interface ErrorResponse {
  status: number;
  body: ErrorBody;
}

const httpCodes: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  409: 'conflict',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  422: 'unprocessable',
  429: 'too_many_requests',
};

/** The single mapping from a thrown value to the HTTP error shape; used by the filter and the idempotency store. */
export function toErrorResponse(err: unknown): ErrorResponse {
  if (err instanceof ReplayedError) return { status: err.status, body: err.body as ErrorBody };
  if (err instanceof DomainError) {
    return {
      status: err.status,
      body: { error: { code: err.code, message: err.message, field: err.field ?? null, ...(err.details ? { details: err.details } : {}) } },
    };
  }
  if (err instanceof MoneyError) {
    return { status: 400, body: { error: { code: err.code, message: err.message, field: err.field ?? null } } };
  }
  if (err instanceof HttpException) {
    const status = err.getStatus();
    const res = err.getResponse();
    const message =
      typeof res === 'string'
        ? res
        : Array.isArray((res as { message?: unknown }).message)
          ? ((res as { message: string[] }).message).join('; ')
          : String((res as { message?: unknown }).message ?? err.message);
    return { status, body: { error: { code: httpCodes[status] ?? `http_${status}`, message, field: null } } };
  }
  // body-parser raises these for malformed JSON and oversized bodies before any route runs.
  const bp = err as { type?: string; status?: number; statusCode?: number; message?: string };
  if (bp && typeof bp === 'object' && typeof bp.type === 'string' && (bp.status ?? bp.statusCode)) {
    const status = (bp.status ?? bp.statusCode) as number;
    if (bp.type === 'entity.parse.failed') {
      return { status: 400, body: { error: { code: 'malformed_json', message: `Request body is not valid JSON: ${bp.message}`, field: null } } };
    }
    if (bp.type === 'entity.too.large') {
      return { status: 413, body: { error: { code: 'payload_too_large', message: 'Request body is too large', field: null } } };
    }
    if (status >= 400 && status < 500) {
      return { status, body: { error: { code: httpCodes[status] ?? 'bad_request', message: bp.message ?? 'Bad request', field: null } } };
    }
  }
  return {
    status: HttpStatus.INTERNAL_SERVER_ERROR,
    body: { error: { code: 'internal_error', message: 'An internal error occurred; it has been logged', field: null } },
  };
}
