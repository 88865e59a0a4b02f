/**
 * Live reload (issue 12 item 1; docs/deployment.md "Reloading the config"): on SIGHUP the config
 * file and the signing key are read again. A config with problems is refused with every problem
 * and its key path, and the running one keeps serving. A sound one is built completely (every
 * authenticator, authorizer and key) before it is swapped in, so a half-built config never
 * answers; the replaced issuer's pools are closed once its requests in flight have finished.
 *
 * What the listeners and the database were opened with cannot change without a restart: those
 * keys keep their running value, with a warning naming each one.
 */
import type { LoadedConfig } from "../config/load.ts";
import { ConfigError } from "../errors.ts";
import type { TokenIssuer } from "../issue-token.ts";
import { log } from "../log.ts";
import type { CurrentIssuer } from "./current-issuer.ts";

export interface Reloader {
  /** Reads the config file and the key files again; throws ConfigError listing every problem. */
  load(): Promise<LoadedConfig>;
  /** Builds the issuer for a loaded config; throws when a back-end cannot be set up. */
  build(loaded: LoadedConfig): TokenIssuer;
  /** Closes what a replaced issuer held open (src/server.ts closeIssuer). */
  close(issuer: TokenIssuer): Promise<void>;
  current: CurrentIssuer;
}

/**
 * Sections whose value is bound at start: the listeners (server, api), the data directory and
 * what lives in it with the database (the audit log's retention, the access token limits the
 * management API was built with). audit.token_decisions is read per request and does reload.
 * The web interface's routes and session limits are mounted with the listener (docs/web.md), and
 * so are the identity providers' sign-in routes and their re-check sweep (issue 15).
 */
const RESTART_ONLY_SECTIONS = [
  "server",
  "api",
  "data_dir",
  "access_tokens",
  "audit",
  "web",
  "identity_providers",
] as const;
const RELOADABLE_INSIDE_RESTART_ONLY = new Set(["audit.token_decisions"]);

/**
 * Reloads once. Returns the config now serving: the new one (with restart-only keys kept at their
 * running values), or `running` unchanged when the new one was refused.
 */
export async function reloadConfig(running: LoadedConfig, reloader: Reloader): Promise<LoadedConfig> {
  let next: LoadedConfig;
  let issuer: TokenIssuer;
  let needRestart: string[];
  try {
    const loaded = await reloader.load();
    needRestart = changedKeyPaths(running.config, loaded.config);
    next = { ...loaded, config: withRestartOnlyKeysOf(running.config, loaded.config) };
    issuer = reloader.build(next);
  } catch (error) {
    if (error instanceof ConfigError) {
      log.error("config reload refused", {
        config: error.source,
        problems: error.problems.length,
        reasons: error.problems.map((p) => `${p.path || "(top)"}: ${p.message}`).join("; "),
        keeps: "the running config keeps serving",
      });
    } else {
      log.error("config reload refused", {
        config: running.source,
        reasons: error instanceof Error ? error.message : String(error),
        keeps: "the running config keeps serving",
      });
    }
    return running;
  }
  for (const key of needRestart)
    log.warn("config key changed but needs a restart; keeping the running value", {
      key,
      fix: "systemctl restart regauth",
    });
  void reloader.current
    .swap(issuer)
    .then((replaced) => reloader.close(replaced))
    .catch((error) => log.warn("closing the replaced config's connections failed", { error }));
  log.info("config reloaded", {
    config: next.source,
    users: Object.keys(next.config.users ?? {}).length,
    acl_rules: next.acl.rules.length,
    authn: issuer.authenticators.map((a) => a.name).join(","),
    authz: issuer.authorizers.map((a) => a.name).join(","),
    registration: next.config.registration.mode,
    token_ttl_seconds: next.config.token.expiration,
    alg: issuer.signingKey.alg,
    kid: issuer.signingKey.kid,
    ...(needRestart.length > 0 ? { needs_restart: needRestart.join(",") } : {}),
  });
  return next;
}

type Config = LoadedConfig["config"];

/** The leaf key paths under the restart-only sections whose value differs, e.g. `server.addr`. */
export function changedKeyPaths(running: Config, loaded: Config): string[] {
  const changed: string[] = [];
  for (const section of RESTART_ONLY_SECTIONS) diff(running[section], loaded[section], section, changed);
  return changed.filter((path) => ![...RELOADABLE_INSIDE_RESTART_ONLY].some((r) => path.startsWith(r)));
}

function diff(a: unknown, b: unknown, path: string, out: string[]): void {
  if (isPlainObject(a) && isPlainObject(b)) {
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)]))
      diff(a[key], b[key], `${path}.${key}`, out);
  } else if (JSON.stringify(a) !== JSON.stringify(b)) {
    out.push(path);
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function withRestartOnlyKeysOf(running: Config, loaded: Config): Config {
  const kept: Config = { ...loaded };
  for (const section of RESTART_ONLY_SECTIONS) {
    if (running[section] === undefined) delete kept[section];
    else (kept as Record<string, unknown>)[section] = running[section];
  }
  kept.audit = { ...running.audit, token_decisions: loaded.audit.token_decisions };
  return kept;
}
