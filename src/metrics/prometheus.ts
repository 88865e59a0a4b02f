/**
 * The Prometheus recorder, on prom-client (a well-kept library that writes the exposition format
 * `promtool check metrics` accepts). Imported only when `metrics.enabled` is true: importing
 * prom-client costs ~100 ms, which the start-up budget (issue 12, item 6) has no room for.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { MetricsRecorder, TokenRefusalReason } from "./recorder.ts";

export interface PrometheusMetrics {
  recorder: MetricsRecorder;
  /** The exposition text, and its content type. */
  scrape(): Promise<{ body: string; contentType: string }>;
}

const REFUSAL_REASONS: TokenRefusalReason[] = [
  "unauthorized",
  "throttled",
  "bad_request",
  "busy",
  "unavailable",
  "too_large",
  "error",
];

export function createPrometheusMetrics(): PrometheusMetrics {
  const registry = new Registry();
  const registers = [registry];
  const issued = new Counter({
    name: "regauth_tokens_issued_total",
    help: "Registry tokens issued.",
    registers,
  });
  const refused = new Counter({
    name: "regauth_token_requests_refused_total",
    help: "Token requests answered without a token, by reason (unauthorized: bad credentials; throttled: 429; busy: 503).",
    labelNames: ["reason"],
    registers,
  });
  for (const reason of REFUSAL_REASONS) refused.inc({ reason }, 0);
  const requestSeconds = new Histogram({
    name: "regauth_http_request_duration_seconds",
    help: "Time from request to response, by route and status code.",
    labelNames: ["route", "status"],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });
  const cacheHits = new Counter({
    name: "regauth_credential_cache_hits_total",
    help: "Password checks answered by the verified-credential cache.",
    registers,
  });
  const cacheMisses = new Counter({
    name: "regauth_credential_cache_misses_total",
    help: "Password checks that computed a hash (the cache had no success for them).",
    registers,
  });
  const backendSeconds = new Histogram({
    name: "regauth_backend_duration_seconds",
    help: "Time one call of an authentication or authorization back-end took (ldap_auth, ext_auth, ext_authz, xorm_auth, acl_xorm, ...).",
    labelNames: ["backend"],
    buckets: [0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });
  const backendErrors = new Counter({
    name: "regauth_backend_errors_total",
    help: "Back-end failures (an error, not a refusal): LDAP, hooks, SQL back-ends, acl_xorm reloads.",
    labelNames: ["backend"],
    registers,
  });
  const throttled = new Counter({
    name: "regauth_throttled_attempts_total",
    help: "Logins and registrations refused by the throttle (429).",
    registers,
  });
  const dropped = new Counter({
    name: "regauth_background_writes_dropped_total",
    help: "Audit and last-used writes dropped because the background writer's queue was full.",
    registers,
  });
  // As the blackbox exporter's probe_ssl_earliest_cert_expiry: alert on `… - time() < 14 * 86400`.
  const certificateExpiry = new Gauge({
    name: "regauth_tls_certificate_expiry_timestamp_seconds",
    help: "When the HTTPS certificate from server.letsencrypt that is served now expires (unix seconds).",
    // A label, so that a server without letsencrypt has no series (a 0 would fire every alert).
    labelNames: ["host"],
    registers,
  });
  return {
    recorder: {
      tokenIssued: () => issued.inc(),
      tokenRefused: (reason) => refused.inc({ reason }),
      requestFinished: (route, status, seconds) =>
        requestSeconds.observe({ route, status: String(status) }, seconds),
      credentialCache: (hit) => (hit ? cacheHits : cacheMisses).inc(),
      backendCall: (backend, seconds, failed) => {
        backendSeconds.observe({ backend }, seconds);
        if (failed) backendErrors.inc({ backend });
      },
      backendError: (backend) => backendErrors.inc({ backend }),
      throttled: () => throttled.inc(),
      backgroundWritesDropped: (count) => dropped.inc(count),
      tlsCertificateServed: (host, notAfterUnixSeconds) =>
        certificateExpiry.set({ host }, notAfterUnixSeconds),
    },
    async scrape() {
      return { body: await registry.metrics(), contentType: registry.contentType };
    },
  };
}
