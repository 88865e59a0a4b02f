/**
 * What regauth counts for Prometheus (issue 12, item 4), as plain calls the domain makes. Until
 * `metrics.enabled` installs a real recorder (src/metrics/prometheus.ts, loaded only then), every
 * call goes to NO_METRICS and costs a function call: prom-client is never imported by a server
 * that does not export metrics, nor by the CLI (the start-up budget, issue 12 item 6).
 */
export type TokenRefusalReason =
  | "unauthorized"
  | "throttled"
  | "bad_request"
  | "busy"
  | "unavailable"
  | "too_large"
  | "error";

export interface MetricsRecorder {
  tokenIssued(): void;
  tokenRefused(reason: TokenRefusalReason): void;
  /** One HTTP request of `route` (token, healthz, ...) answered with `status` after `seconds`. */
  requestFinished(route: string, status: number, seconds: number): void;
  /** The verified-credential cache (src/authn/password-verifier.ts) answered, or did not. */
  credentialCache(hit: boolean): void;
  /** One call of an authentication or authorization back-end (ldap_auth, ext_auth, xorm_auth, ...). */
  backendCall(backend: string, seconds: number, failed: boolean): void;
  /** A background failure of a back-end outside any request (acl_xorm's reload). */
  backendError(backend: string): void;
  /** A login or registration refused by the throttle (429). */
  throttled(): void;
  /** Writes the background writer dropped because its queue was full (src/db/background-writer.ts). */
  backgroundWritesDropped(count: number): void;
  /** The HTTPS certificate served now for `host` expires at this time (server.letsencrypt, issue 16). */
  tlsCertificateServed(host: string, notAfterUnixSeconds: number): void;
}

const ignore = () => {};
export const NO_METRICS: MetricsRecorder = {
  tokenIssued: ignore,
  tokenRefused: ignore,
  requestFinished: ignore,
  credentialCache: ignore,
  backendCall: ignore,
  backendError: ignore,
  throttled: ignore,
  backgroundWritesDropped: ignore,
  tlsCertificateServed: ignore,
};

/** The recorder in use; a live binding, so `metrics.tokenIssued()` always reaches the current one. */
export let metrics: MetricsRecorder = NO_METRICS;

export function useMetrics(recorder: MetricsRecorder): void {
  metrics = recorder;
}
