/**
 * Typed errors the domain raises. One filter maps them to `{"error": {code, message, field}}`;
 * a thrown value that is not one of these (or a Nest HttpException) is a bug and becomes a 500.
 */
export class DomainError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class ValidationError extends DomainError {
  constructor(code: string, message: string, field?: string, details?: Record<string, unknown>) {
    super(400, code, message, field, details);
  }
}

export class UnauthorizedError extends DomainError {
  constructor(message = 'A valid API key is required (Authorization: Bearer <key>)') {
    super(401, 'unauthorized', message);
  }
}

export class ForbiddenError extends DomainError {
  constructor(message: string) {
    super(403, 'forbidden', message);
  }
}

export class NotFoundError extends DomainError {
  constructor(resource: string, id: string, field?: string) {
    super(404, 'not_found', `${resource} ${id} was not found`, field);
  }
}

export class ConflictError extends DomainError {
  constructor(code: string, message: string, field?: string, details?: Record<string, unknown>) {
    super(409, code, message, field, details);
  }
}

/** A well-formed request the current state does not allow (finalized invoice, closed period...). */
export class UnprocessableError extends DomainError {
  constructor(code: string, message: string, field?: string, details?: Record<string, unknown>) {
    super(422, code, message, field, details);
  }
}

/** An error answer stored under an Idempotency-Key, replayed exactly as it was first sent. */
export class ReplayedError extends Error {
  constructor(readonly status: number, readonly body: unknown) {
    super('replayed error response');
  }
}
