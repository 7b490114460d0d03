/** Typed errors with stable codes; HTTP status mapping happens only at the edges. */

/** Every error code Switchyard raises. docs/errors.md documents each one (a test checks). */
export const ErrorCodes = {
  SY_ERR_INVALID_ARGUMENT: 'a value given by the user is malformed or out of range',
  SY_ERR_BAD_DURATION: 'a duration string does not follow Go time.ParseDuration syntax',
  SY_ERR_BAD_REQUEST: 'an HTTP request to the registry API is invalid (400)',
  SY_ERR_PERMISSION_DENIED: 'the ACL token is missing or wrong (403)',
  SY_ERR_NOT_FOUND: 'the addressed service, check, node or key does not exist (404)',
  SY_ERR_METHOD_NOT_ALLOWED: 'the HTTP method is not allowed on this route (405)',
  SY_ERR_TOO_LARGE: 'a request body or KV value exceeds its size limit (413)',
  SY_ERR_INTERNAL: 'an unexpected failure inside Switchyard (500)',
  SY_ERR_CONFIG: 'a configuration file or flag is invalid',
  SY_ERR_STORE_CLOSED: 'a write reached a store that is closed or shutting down',
  SY_ERR_STORE_IO: 'the storage layer failed to read or write its files',
  SY_ERR_STORE_CORRUPT: 'the data directory holds records that cannot be recovered',
  SY_ERR_STORE_UNAVAILABLE: 'the distributed store (etcd) did not answer or lost quorum (503)',
  SY_ERR_CONFLICT: 'a read-decide-write (lock, session, txn) kept losing races on the keys it reads and gave up (503)',
  SY_ERR_NOT_IMPLEMENTED: 'a Consul API endpoint that Switchyard does not implement (501)',
  SY_ERR_LOCK: '`switchyard lock` could not set up, acquire or release its lock or semaphore',
  SY_ERR_FILTER: 'a ?filter expression cannot be parsed or uses an unsupported form',
  SY_ERR_ADDR_IN_USE: 'a listen address is already taken by another process',
  SY_ERR_TEMPLATE: 'a template cannot be parsed or executed (Go text/template semantics)',
  SY_ERR_FILTER_LIMIT: 'a ?filter expression exceeds a limit: length, nesting, regex size or evaluation budget (400)',
  SY_ERR_SNAPSHOT: 'a snapshot file is not a snapshot, is truncated or altered, or holds a record this registry would not write (400)',
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export class SwitchyardError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'SwitchyardError';
  }
}

/**
 * An error that the registry API turns into a Consul-style plain-text response.
 * `message` is the exact body Consul would send, so clients that string-match keep working.
 */
export class HttpError extends SwitchyardError {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  constructor(status: number, message: string, opts: { code?: ErrorCode; headers?: Record<string, string>; cause?: unknown } = {}) {
    super(opts.code ?? codeForStatus(status), message, { cause: opts.cause });
    this.status = status;
    this.headers = opts.headers ?? {};
    this.name = 'HttpError';
  }
}

function codeForStatus(status: number): ErrorCode {
  switch (status) {
    case 400: return 'SY_ERR_BAD_REQUEST';
    case 403: return 'SY_ERR_PERMISSION_DENIED';
    case 404: return 'SY_ERR_NOT_FOUND';
    case 405: return 'SY_ERR_METHOD_NOT_ALLOWED';
    case 413: return 'SY_ERR_TOO_LARGE';
    case 501: return 'SY_ERR_NOT_IMPLEMENTED';
    default: return 'SY_ERR_INTERNAL';
  }
}

export const badRequest = (message: string): HttpError => new HttpError(400, message);
export const notFound = (message: string): HttpError => new HttpError(404, message);

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
