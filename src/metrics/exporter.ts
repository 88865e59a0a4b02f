/**
 * `metrics.enabled`: installs the Prometheus recorder and returns what the /metrics route needs
 * (src/http/app.ts). prom-client is imported here, on demand, never at module load.
 */
import type { Config } from "../config/schema.ts";
import { ConfigError } from "../errors.ts";
import { metricsBearerToken } from "./bearer-token.ts";
import { useMetrics } from "./recorder.ts";

export interface MetricsExporter {
  scrape(): Promise<{ body: string; contentType: string }>;
  /** Required as `Authorization: Bearer <token>`; null: /metrics is open (keep it on a private network). */
  bearerToken: string | null;
}

export async function startMetricsExporter(
  settings: Config["metrics"],
  source: string,
): Promise<MetricsExporter | undefined> {
  if (!settings.enabled) return undefined;
  const bearerToken = readBearerToken(settings, source);
  const { createPrometheusMetrics } = await import("./prometheus.ts");
  const prometheus = createPrometheusMetrics();
  useMetrics(prometheus.recorder);
  return { scrape: prometheus.scrape, bearerToken };
}

function readBearerToken(settings: Config["metrics"], source: string): string | null {
  const { token, problems } = metricsBearerToken(settings);
  if (problems.length > 0) throw new ConfigError(source, problems);
  return token;
}
