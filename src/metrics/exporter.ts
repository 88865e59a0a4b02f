/**
 * `metrics.enabled`: installs the Prometheus recorder and returns what the /metrics route needs
 * (src/http/app.ts). prom-client is imported here, on demand, never at module load.
 */
import { readFileSync } from "node:fs";
import type { Config } from "../config/schema.ts";
import { ConfigError } from "../errors.ts";
import { useMetrics } from "./recorder.ts";

export interface MetricsExporter {
  scrape(): Promise<{ body: string; contentType: string }>;
  /** Required as `Authorization: Bearer <token>`; null: /metrics is open (keep it on a private network). */
  bearerToken: string | null;
}

const MIN_BEARER_TOKEN_LENGTH = 16;

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
  if (settings.bearer_token !== undefined && settings.bearer_token_file !== undefined)
    throw new ConfigError(source, [
      { path: "metrics", message: "give bearer_token or bearer_token_file, not both" },
    ]);
  if (settings.bearer_token_file === undefined) return settings.bearer_token ?? null;
  let text: string;
  try {
    text = readFileSync(settings.bearer_token_file, "utf8");
  } catch (error) {
    throw new ConfigError(source, [
      {
        path: "metrics.bearer_token_file",
        message: `cannot read ${settings.bearer_token_file}: ${(error as Error).message}`,
      },
    ]);
  }
  const token = text.replace(/\r?\n$/, "");
  if (token.length < MIN_BEARER_TOKEN_LENGTH || /\s/.test(token))
    throw new ConfigError(source, [
      {
        path: "metrics.bearer_token_file",
        message: `the token must be one line of at least ${MIN_BEARER_TOKEN_LENGTH} characters without spaces`,
      },
    ]);
  return token;
}
