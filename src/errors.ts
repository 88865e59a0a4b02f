/**
 * Errors that end a request. "Denied" is never one of these: authenticators return null and
 * authorizers return an empty action list. These are thrown only when a request cannot be served
 * as asked; `src/http/app.ts` is the one place that turns them into HTTP responses.
 */
export class AppError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string, options?: ErrorOptions) {
    // These are answers to clients, never logged with a stack, and a guessing client can cause
    // tens of thousands a second (401, 429): capturing a stack for each only feeds the GC.
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message, options);
    Error.stackTraceLimit = stackTraceLimit;
    this.status = status;
    this.code = code;
    this.name = new.target.name;
  }
}

/** The client sent something malformed; the message tells it what. */
export class BadRequest extends AppError {
  constructor(message: string, code = "BAD_REQUEST") {
    super(400, code, message);
  }
}

/** Credentials were missing or wrong. Rendered with `WWW-Authenticate: Basic`. */
export class Unauthorized extends AppError {
  constructor(message = "authentication failed") {
    super(401, "UNAUTHORIZED", message);
  }
}

export class Forbidden extends AppError {
  constructor(message: string) {
    super(403, "DENIED", message);
  }
}

export class NotFound extends AppError {
  constructor(message: string) {
    super(404, "NOT_FOUND", message);
  }
}

export class Conflict extends AppError {
  constructor(message: string) {
    super(409, "CONFLICT", message);
  }
}

/** Too many attempts; the client should slow down. */
export class TooManyRequests extends AppError {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(429, "TOOMANYREQUESTS", message);
  }
}

/**
 * How a failed request settles its login-throttle charge (src/authn/throttle.ts): a request that
 * got no verdict is refunded, but some failures are charged like a wrong password: a hook that
 * judged the password and then exited oddly (review L1), a client refused for its own share of
 * the password-check queue (review M4).
 */
export interface ThrottleSettlement {
  /** True: the throttle charge stands, as for a wrong password. */
  keepsThrottleCharge?: boolean;
}

/** A back-end we depend on (LDAP, a hook) could not answer. The cause goes to the log only. */
export class Unavailable extends AppError {
  readonly keepsThrottleCharge: boolean;

  constructor(message: string, options?: ErrorOptions & ThrottleSettlement) {
    super(503, "UNAVAILABLE", message, options);
    this.keepsThrottleCharge = options?.keepsThrottleCharge ?? false;
  }
}

/**
 * Too much work already queued (e.g. password checks): answered 503 with Retry-After (RFC 9110
 * §10.2.3, §15.6.4) at once instead of holding the connection. Not logged per request: the
 * component that refuses logs it, rate-limited.
 */
export class ServerBusy extends AppError {
  readonly keepsThrottleCharge: boolean;

  constructor(
    message: string,
    readonly retryAfterSeconds: number,
    settlement: ThrottleSettlement = {},
  ) {
    super(503, "UNAVAILABLE", message);
    this.keepsThrottleCharge = settlement.keepsThrottleCharge ?? false;
  }
}

/**
 * The accounts database cannot answer in time: a lock held by another process, a full or failing
 * disk (src/db/store-errors.ts). 503 with Retry-After; logged there, rate-limited, never per request.
 */
export class StoreUnavailable extends ServerBusy {}

/** Whether an error that ended a login keeps its throttle charge (see ThrottleSettlement). */
export function keepsThrottleCharge(error: unknown): boolean {
  return (error instanceof Unavailable || error instanceof ServerBusy) && error.keepsThrottleCharge;
}

export interface ConfigProblem {
  /** Dotted key path into the config file, e.g. `acl.3.match.ip`. */
  path: string;
  message: string;
}

/** Everything wrong with a config file, collected in one pass. Startup only; never HTTP. */
export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: ConfigProblem[],
  ) {
    super(
      `${source}: ${problems.length} problem(s)\n${problems.map((p) => `  - ${p.path || "(top)"}: ${p.message}`).join("\n")}`,
    );
    this.name = "ConfigError";
  }
}

/**
 * A request body over the limit (RFC 9110 §15.5.14); not read past the limit. A client's mistake,
 * answered 413 and never logged: anyone can send one (review finding 11).
 */
export class PayloadTooLarge extends AppError {
  constructor(message: string) {
    super(413, "PAYLOAD_TOO_LARGE", message);
  }
}

/** A body in a format the route does not take (RFC 9110 §15.5.16). */
export class UnsupportedMediaType extends AppError {
  constructor(message: string) {
    super(415, "UNSUPPORTED_MEDIA_TYPE", message);
  }
}
