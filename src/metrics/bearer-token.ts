/**
 * `metrics.bearer_token` / `metrics.bearer_token_file`: the token /metrics requires. One check,
 * used by the config loader (so that `regauth check-config` reports what `serve` would refuse)
 * and by the exporter at start; node:fs only, so the CLI never loads prom-client through it.
 */
import { readFileSync } from "node:fs";
import type { Config } from "../config/schema.ts";
import type { ConfigProblem } from "../errors.ts";

export const MIN_BEARER_TOKEN_LENGTH = 16;

/** The token (null: /metrics is open), or the problems that make the section unusable. */
export function metricsBearerToken(settings: Config["metrics"]): {
  token: string | null;
  problems: ConfigProblem[];
} {
  if (settings.bearer_token !== undefined && settings.bearer_token_file !== undefined)
    return {
      token: null,
      problems: [{ path: "metrics", message: "give bearer_token or bearer_token_file, not both" }],
    };
  if (settings.bearer_token_file === undefined) return { token: settings.bearer_token ?? null, problems: [] };
  let text: string;
  try {
    text = readFileSync(settings.bearer_token_file, "utf8");
  } catch (error) {
    return {
      token: null,
      problems: [
        {
          path: "metrics.bearer_token_file",
          message: `cannot read ${settings.bearer_token_file}: ${(error as Error).message}`,
        },
      ],
    };
  }
  const token = text.replace(/\r?\n$/, "");
  if (token.length < MIN_BEARER_TOKEN_LENGTH || /\s/.test(token))
    return {
      token: null,
      problems: [
        {
          path: "metrics.bearer_token_file",
          message: `the token must be one line of at least ${MIN_BEARER_TOKEN_LENGTH} characters without spaces`,
        },
      ],
    };
  return { token, problems: [] };
}
