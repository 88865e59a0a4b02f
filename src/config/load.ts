/**
 * Loading the config file: YAML → `${VAR}` substitution → schema check (with defaults) → semantic
 * checks (patterns, files, keys). Every problem is collected with its key path and reported in
 * one ConfigError, so a user fixes a file in one pass instead of one error per restart.
 */
import { log } from "../log.ts";
import { createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import { accessSync, constants, mkdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join as joinPath, resolve } from "node:path";
import { Value } from "@sinclair/typebox/value";
import { registrationProblems } from "../accounts/config-schema.ts";
import { type Acl, compileAcl } from "../acl.ts";
import { isSupportedHash } from "../authn/password-verifier.ts";
import { type ConfigProblem, ConfigError } from "../errors.ts";
import { resolveHookProgram } from "../hooks/hook-config.ts";
import { checkLdapConfig } from "../ldap/config.ts";
import { aclReloadIntervalMs, checkSqlSection } from "../sql-backends/config.ts";
import { webhookConfigProblems } from "../webhooks/config-check.ts";
import { dockerAuthIdentityAdvice } from "../identity/docker-auth-sections.ts";
import { identityProviderProblems } from "../identity/config-check.ts";
import { metricsBearerToken } from "../metrics/bearer-token.ts";
import { notificationSecretFileProblem } from "../registry-index/secret.ts";
import {
  BUNDLE_FILE,
  JWKS_FILE,
  type KeySet,
  loadKeySet,
  publishedAt,
  singleKeySet,
  writePublishedFiles,
} from "../token/key-set.ts";
import { ensureGeneratedKey, loadSigningKey, type SigningKey } from "../token/keys.ts";
import { ensureRefreshSecret, REFRESH_KEY_FILE } from "../token/refresh-token.ts";
import {
  dataDirTrustProblem,
  inspectDataDir,
  previousRunProblems,
  setAsideEmptyDatabase,
} from "../db/data-dir.ts";
import { Config } from "./schema.ts";
import { checkTlsSettings } from "./tls.ts";
import { letsEncryptProblems } from "../acme/config-schema.ts";

export interface LoadedConfig {
  config: Config;
  /** Where the config came from: a file path, or "embedded default". */
  source: string;
  acl: Acl;
  /** Null only when validating with createFiles false and no key is configured. */
  signingKey: SigningKey | null;
  /** Every published key (issue 12 item 2); the generated set, or the one configured key. */
  keySet: KeySet | null;
  dataDir: string;
  /** True when the signing key was generated in the data directory on this start. */
  generatedKey: boolean;
  keyPaths: { keyPath: string; certificatePath: string | undefined; inDataDir?: boolean } | null;
  /** `<data_dir>/refresh.key`; null when refresh tokens are off or files are not created. */
  refreshSecret: Buffer | null;
  /**
   * True when the data directory held nothing of a previous run (issue 9, item 3) and files were
   * created: if this start then fails (a full disk), the caller removes createdFiles again, so
   * that the next start is a first run too and not "something is missing".
   */
  firstRun: boolean;
  createdFiles: string[];
}

export interface LoadOptions {
  env?: Record<string, string | undefined>;
  /** `--data-dir`, which wins over `data_dir` in the file. */
  dataDir?: string | undefined;
  /** False for `check-config`: validate only, create no directory and no key. */
  createFiles?: boolean;
  /** `serve --addr` or $REGAUTH_ADDR: wins over `server.addr` (and means `net: tcp`). */
  addr?: string | undefined;
  /**
   * `regauth serve --reinitialize`: the data directory holds a previous run but its database or
   * signing key is gone; create what is missing instead of refusing to start.
   */
  reinitialize?: boolean;
  /**
   * `check-config`: also the files serve reads only at start (metrics.bearer_token_file,
   * notifications.secret_file), with serve's own checks. Not for a reload or the other commands:
   * they never read these files, and an operator who cannot read the service's secret must not be
   * locked out of `regauth user list` or a reload of the ACL by it.
   */
  checkFilesServeReads?: boolean;
}

export const EMBEDDED_DEFAULT_SOURCE = "embedded default";

/** The configuration `regauth serve` runs with when no file is given. */
export function embeddedDefaultConfig(): unknown {
  return {
    server: { addr: "127.0.0.1:5001" },
    token: { issuer: "regauth", expiration: 300, services: ["registry"] },
  };
}

/** Reads and validates a config file. Throws ConfigError listing every problem. */
export async function loadConfigFile(path: string, options: LoadOptions = {}): Promise<LoadedConfig> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason =
      code === "ENOENT"
        ? "no such file"
        : code === "EACCES"
          ? "permission denied"
          : code === "EISDIR"
            ? "is a directory"
            : String(error);
    throw new ConfigError(path, [{ path: "", message: `cannot read config file: ${reason}` }]);
  }
  let raw: unknown;
  try {
    raw = Bun.YAML.parse(text);
  } catch (error) {
    throw new ConfigError(path, [
      {
        path: "",
        message: `YAML syntax error: ${(error as Error).message.replace(/^YAML Parse error: /, "")}`,
      },
    ]);
  }
  return prepareConfig(raw ?? {}, path, options);
}

/** Validates an already parsed document (the file's, or the embedded default). */
export async function prepareConfig(
  raw: unknown,
  source: string,
  options: LoadOptions = {},
): Promise<LoadedConfig> {
  const env = options.env ?? process.env;
  const problems: ConfigProblem[] = [];
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new ConfigError(source, [
      { path: "", message: "the config file must be a YAML mapping (key: value)" },
    ]);
  }
  const substituted = substituteEnv(raw, "", env, problems) as Record<string, unknown>;
  if (options.addr !== undefined && (substituted.server === undefined || isMapping(substituted.server))) {
    substituted.server = { ...(substituted.server as object | undefined), addr: options.addr, net: "tcp" };
  }
  const withDefaults = Value.Default(Config, Value.Clone(substituted));
  const seen = new Set<string>();
  for (const error of Value.Errors(Config, withDefaults)) {
    const path = error.path.slice(1).replaceAll("/", ".");
    if (seen.has(path)) continue; // one message per key is enough ("required" then "expected string")
    seen.add(path);
    problems.push({ path, message: describeSchemaError(path, error.message, error.value) });
  }
  // Sections the schema accepted are checked further even when others are broken, so that a
  // typo in one place does not hide an invalid regex or key in another until the next run.
  const schemaBroken = new Set(problems.map((p) => p.path.split(".")[0] ?? ""));
  const isSound = (...sections: string[]) =>
    !schemaBroken.has("") && sections.every((s) => !schemaBroken.has(s));
  const config = withDefaults as Config;

  if (isSound("server")) checkServer(config, problems);
  if (schemaBroken.size > 0) {
    // Check what can be checked, then report everything together.
    if (isSound("users")) checkUsers(config, problems);
    if (isSound("acl")) problems.push(...compileAcl(config.acl ?? [], "acl").problems);
    checkSqlBackends(config, problems, isSound);
    throw new ConfigError(source, problems);
  }
  checkUsers(config, problems);
  for (const section of ["ext_auth", "ext_authz"] as const) {
    const hook = config[section];
    if (hook) resolveHookProgram(hook, section, dirname(resolve(source)), env.PATH, problems);
  }
  const { acl, problems: aclProblems } = compileAcl(config.acl ?? [], "acl");
  problems.push(...aclProblems);
  if (config.ldap_auth) checkLdapConfig(config.ldap_auth, "ldap_auth", problems);
  checkSqlBackends(config, problems);
  problems.push(...registrationProblems(config));
  problems.push(...webhookConfigProblems(config.webhooks));
  problems.push(...identityProviderProblems(config.identity_providers));
  // Files serve reads at start: check-config reports them with serve's own check and message.
  if (options.checkFilesServeReads && config.metrics.enabled)
    problems.push(...metricsBearerToken(config.metrics).problems);
  if (
    options.checkFilesServeReads &&
    config.notifications.enabled &&
    config.notifications.secret_file !== undefined
  ) {
    const problem = notificationSecretFileProblem(config.notifications.secret_file);
    if (problem) problems.push(problem);
  }
  const providerCount = config.identity_providers.oidc.length + config.identity_providers.github.length;
  if (providerCount > 0 && (!config.web.enabled || !config.api.enabled))
    problems.push({
      path: "identity_providers",
      message: "sign-in with a provider happens in the web interface: it needs web.enabled and api.enabled",
    });

  // An empty $STATE_DIRECTORY (or an empty first entry) is unset: resolve("") would make the
  // working directory itself the data directory.
  const stateDirectory = env.STATE_DIRECTORY?.split(":")[0] || undefined;
  const dataDir = resolve(options.dataDir ?? config.data_dir ?? stateDirectory ?? "regauth-data");
  const createFiles = options.createFiles ?? true;
  if (createFiles) checkDataDir(dataDir, problems);
  const generatesSigningKey =
    config.token.key === undefined &&
    config.token.certificate === undefined &&
    (config.server.key === undefined || config.server.certificate === undefined);
  let firstRun = false;
  if (createFiles && !problems.some((p) => p.path === "data_dir")) {
    // Before anything is created: is this a first run, a whole installation, or a damaged one?
    const contents = inspectDataDir(dataDir);
    firstRun =
      contents.database !== "present" && contents.signingKeyFiles.length === 0 && !contents.hasRefreshKey;
    const previousRun = previousRunProblems(contents, dataDir, generatesSigningKey);
    if (previousRun.length > 0 && !options.reinitialize)
      problems.push(...previousRun.map((message) => ({ path: "data_dir", message })));
    else if (previousRun.length > 0 && contents.database === "empty")
      setAsideEmptyDatabase(dataDir, Math.floor(Date.now() / 1000));
  }

  // Signing key: token.key, else the HTTPS key (docker_auth's rule), else one generated in data_dir.
  let keyPaths: LoadedConfig["keyPaths"] | undefined;
  let keyConfigPath = { key: "token.key", certificate: "token.certificate" };
  let generatedKey = false;
  if (config.token.key !== undefined || config.token.certificate !== undefined) {
    if (config.token.key === undefined || config.token.certificate === undefined) {
      problems.push({ path: "token", message: "certificate and key must be given together" });
    } else keyPaths = { keyPath: config.token.key, certificatePath: config.token.certificate };
  } else if (config.server.key !== undefined && config.server.certificate !== undefined) {
    keyPaths = { keyPath: config.server.key, certificatePath: config.server.certificate };
    keyConfigPath = { key: "server.key", certificate: "server.certificate" };
  } else if (createFiles && !problems.some((p) => p.path === "data_dir")) {
    try {
      const generated = ensureGeneratedKey(dataDir);
      keyPaths = { keyPath: generated.keyPath, certificatePath: generated.certificatePath, inDataDir: true };
      generatedKey = generated.created;
      keyConfigPath = { key: "data_dir", certificate: "data_dir" };
    } catch (error) {
      problems.push({
        path: "data_dir",
        message: `cannot create or use the signing key in ${dataDir}: ${describeFileError(error)}`,
      });
    }
  }
  let signingKey: SigningKey | null = null;
  let keySet: KeySet | null = null;
  const nowSeconds = Math.floor(Date.now() / 1000);
  if (keyPaths?.inDataDir) {
    try {
      keySet = await loadKeySet(dataDir, nowSeconds, {
        useThumbprintKid: config.token.disable_legacy_key_id,
        maxTokenLifetimeSeconds: config.token.expiration,
      });
      signingKey = keySet.signingKeyAt(nowSeconds);
    } catch (error) {
      problems.push({ path: "data_dir", message: `signing keys: ${describeFileError(error)}` });
    }
  } else if (keyPaths) {
    const loaded = await loadSigningKey(
      { ...keyPaths, useThumbprintKid: config.token.disable_legacy_key_id },
      keyConfigPath,
    );
    problems.push(...loaded.problems);
    signingKey = loaded.key ?? null;
    if (signingKey) keySet = singleKeySet(signingKey, nowSeconds);
  }
  let refreshSecret: Buffer | null = null;
  if (createFiles && config.token.refresh_expiration > 0 && !problems.some((p) => p.path === "data_dir")) {
    try {
      refreshSecret = ensureRefreshSecret(dataDir);
    } catch (error) {
      problems.push({ path: "data_dir", message: `refresh token key: ${describeFileError(error)}` });
    }
  }
  if (problems.length > 0) throw new ConfigError(source, problems);
  let publishedFiles: string[] = [];
  if (keySet && keyPaths?.inDataDir) {
    // The bundle and JWKS the registries read, in step with the set (0644, public). Not fatal: the
    // server signs without them, and retries (LiveKeySet) while the disk is full.
    try {
      if (writePublishedFiles(dataDir, publishedAt(keySet, nowSeconds)))
        publishedFiles = [joinPath(dataDir, BUNDLE_FILE), joinPath(dataDir, JWKS_FILE)];
    } catch (error) {
      log.warn("cannot write the published key files (token-bundle.crt, jwks.json)", {
        error: describeFileError(error),
      });
    }
  }
  return {
    config,
    source,
    acl,
    signingKey,
    keySet,
    dataDir,
    generatedKey,
    keyPaths: keyPaths ?? null,
    refreshSecret,
    firstRun,
    createdFiles: firstRun
      ? [
          ...(generatedKey && keyPaths ? [keyPaths.keyPath, keyPaths.certificatePath ?? ""] : []),
          ...(refreshSecret ? [joinPath(dataDir, REFRESH_KEY_FILE)] : []),
          ...(generatedKey ? publishedFiles : []),
        ].filter((f) => f !== "")
      : [],
  };
}

/** xorm_auth and acl_xorm: database_type, conn_string and cache_ttl (src/sql-backends/config.ts). */
function checkSqlBackends(
  config: Config,
  problems: ConfigProblem[],
  isSound: (section: string) => boolean = () => true,
): void {
  if (config.xorm_auth && isSound("xorm_auth")) checkSqlSection(config.xorm_auth, "xorm_auth", problems);
  if (config.acl_xorm && isSound("acl_xorm")) {
    checkSqlSection(config.acl_xorm, "acl_xorm", problems);
    aclReloadIntervalMs(config.acl_xorm, "acl_xorm", problems);
  }
}

function checkUsers(config: Config, problems: ConfigProblem[]): void {
  for (const [name, user] of Object.entries(config.users ?? {})) {
    if (user.password === undefined) {
      if (name !== "")
        problems.push({
          path: `users.${name}.password`,
          message: 'missing; only the anonymous user "" may have no password',
        });
    } else if (!isSupportedHash(user.password)) {
      problems.push({
        path: `users.${name}.password`,
        message: "not a bcrypt ($2a$, $2b$, $2y$) or argon2 hash; make one with `regauth hash-password`",
      });
    }
  }
}

function checkServer(config: Config, problems: ConfigProblem[]): void {
  const server = config.server;
  if (server.path_prefix !== "" && !server.path_prefix.startsWith("/")) {
    problems.push({ path: "server.path_prefix", message: 'must start with "/"' });
  }
  server.path_prefix = server.path_prefix.replace(/\/+$/, "");
  if (server.net === "tcp" && !parseListenAddress(server.addr)) {
    problems.push({
      path: "server.addr",
      message: `expected HOST:PORT (e.g. 127.0.0.1:5001 or :5001), got ${JSON.stringify(server.addr)}`,
    });
  }
  if ((server.certificate === undefined) !== (server.key === undefined)) {
    problems.push({ path: "server", message: "certificate and key must be given together" });
  }
  let isPairReadable = server.certificate !== undefined && server.key !== undefined;
  for (const field of ["certificate", "key"] as const) {
    const file = server[field];
    if (file === undefined) continue;
    try {
      accessSync(file, constants.R_OK);
    } catch {
      problems.push({ path: `server.${field}`, message: `cannot read ${file}` });
      isPairReadable = false;
    }
  }
  if (isPairReadable) problems.push(...httpsPairProblems(server.certificate as string, server.key as string));
  checkTlsSettings(
    server,
    (server.certificate !== undefined && server.key !== undefined) || server.letsencrypt !== undefined,
    problems,
  );
  if (server.letsencrypt) checkLetsEncrypt(server, problems);
  const apiAddr = config.api?.addr;
  if (apiAddr !== undefined && !parseListenAddress(apiAddr)) {
    problems.push({
      path: "api.addr",
      message: `expected HOST:PORT (e.g. 127.0.0.1:5002), got ${JSON.stringify(apiAddr)}`,
    });
  }
}

/**
 * The HTTPS pair parsed as the listener will: with a token key of its own, nothing else reads
 * these files before Bun.serve, which refused garbage only after start-up had created the
 * first-run admin, with an OpenSSL code for a message (PEM routines::NO_START_LINE).
 */
function httpsPairProblems(certificatePath: string, keyPath: string): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  let certificate: X509Certificate | undefined;
  let key: KeyObject | undefined;
  try {
    certificate = new X509Certificate(readFileSync(certificatePath));
  } catch {
    problems.push({ path: "server.certificate", message: `${certificatePath} holds no PEM certificate` });
  }
  try {
    key = createPrivateKey(readFileSync(keyPath));
  } catch {
    problems.push({
      path: "server.key",
      message: `${keyPath} holds no PEM private key (an encrypted key is not supported)`,
    });
  }
  if (certificate && key && !certificate.checkPrivateKey(key))
    problems.push({
      path: "server.key",
      message: `${keyPath} does not match server.certificate (${certificatePath})`,
    });
  return problems;
}

/** server.letsencrypt (issue 16): its own checks, and what it cannot be combined with. */
function checkLetsEncrypt(server: Config["server"], problems: ConfigProblem[]): void {
  const section = server.letsencrypt;
  if (!section) return;
  problems.push(
    ...letsEncryptProblems(section, "server.letsencrypt", (addr) => parseListenAddress(addr) !== null),
  );
  // docker_auth uses letsencrypt only without certificate and key; two sources of one listener's
  // certificate is a mistake to point out, not a choice to make silently.
  if (server.certificate !== undefined || server.key !== undefined)
    problems.push({
      path: "server.letsencrypt",
      message: "give either server.certificate and server.key, or server.letsencrypt, not both",
    });
  if (server.net === "unix")
    problems.push({
      path: "server.letsencrypt",
      message: "needs net: tcp (a unix socket has no host name to certify)",
    });
  // The first order comes before the HTTPS listener, every renewal while it holds its port: the
  // challenge listener would find the port taken and every renewal fail (review of issue 16).
  const challengePort = parseListenAddress(section.http_challenge_addr)?.port;
  if (server.net === "tcp" && challengePort && challengePort === parseListenAddress(server.addr)?.port)
    problems.push({
      path: "server.letsencrypt.http_challenge_addr",
      message: `must not be server.addr's port (${challengePort}): the HTTPS listener holds it when a renewal answers the challenge`,
    });
}

/** A file-system error in words; "the disk is full" rather than ENOSPC (issue 9, item 5). */
function describeFileError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "ENOSPC" || code === "EDQUOT") return "the disk is full (free some space and start again)";
  if (code === "EROFS") return "the file system is read-only";
  return (error as Error).message;
}

/** Splits HOST:PORT; `:5001` listens on every interface, as in Go. Null when malformed. */
export function parseListenAddress(addr: string): { hostname: string; port: number } | null {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):([0-9]{1,5})$/.exec(addr);
  if (!match) return null;
  const port = Number(match[3]);
  if (port > 65_535) return null;
  return { hostname: match[1] ?? (match[2] || "0.0.0.0"), port };
}

function checkDataDir(dataDir: string, problems: ConfigProblem[]): void {
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    if (!statSync(dataDir).isDirectory()) throw new Error("not a directory");
    accessSync(dataDir, constants.W_OK | constants.R_OK | constants.X_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason =
      code === "EACCES" || code === "EROFS"
        ? "not writable"
        : code === "ENOSPC"
          ? "unusable: the disk is full"
          : (error as Error).message;
    problems.push({
      path: "data_dir",
      message: `data directory ${dataDir} is ${reason.startsWith("not") || reason.startsWith("unusable") ? reason : `unusable: ${reason}`}`,
    });
    return;
  }
  const untrusted = dataDirTrustProblem(dataDir);
  if (untrusted) problems.push({ path: "data_dir", message: untrusted });
}

const ENV_REFERENCE = /\$\$\{|\$\{([A-Z_][A-Z0-9_]*)\}/g;

/**
 * Replaces `${NAME}` (upper-case names only) in every string value with the environment
 * variable, so secrets can stay out of the file; `$${` writes a literal `${`. Lower-case
 * `${account}` and friends are ACL placeholders and are left alone. An unset variable is an
 * error: an empty secret must never be used silently.
 */
function substituteEnv(
  value: unknown,
  path: string,
  env: Record<string, string | undefined>,
  problems: ConfigProblem[],
): unknown {
  if (typeof value === "string") {
    return value.replace(ENV_REFERENCE, (whole, name: string | undefined) => {
      if (name === undefined) return "${";
      const replacement = env[name];
      if (replacement === undefined) {
        problems.push({ path, message: `environment variable ${name} is not set` });
        return whole;
      }
      return replacement;
    });
  }
  if (Array.isArray(value))
    return value.map((item, i) => substituteEnv(item, join(path, String(i)), env, problems));
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, substituteEnv(v, join(path, k), env, problems)]),
    );
  }
  return value;
}

function isMapping(value: unknown): boolean {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function join(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}

/**
 * docker_auth options regauth does not implement, each with what to use instead. A docker_auth
 * user switching binaries should learn that the feature is missing and what replaces it, not
 * that they misspelt a key (issue 13).
 */
const UNSUPPORTED_DOCKER_AUTH_KEYS: ReadonlyMap<string, string> = new Map([
  ["mongo_auth", "move the users to a SQL table for xorm_auth, or use an ext_auth program"],
  ["plugin_authn", "Go plugins cannot load into regauth; use an ext_auth program"],
  ["acl_mongo", "move the entries to a SQL table for acl_xorm, or use an ext_authz program"],
  ["plugin_authz", "Go plugins cannot load into regauth; use an ext_authz program"],
  ["casbin_authz", "use acl (or acl_xorm), or an ext_authz program that runs casbin"],
]);

function describeSchemaError(path: string, message: string, value: unknown): string {
  if (message === "Unexpected property") {
    // docker_auth's OAuth sections: the identity_providers section to write (issue 15 item 4).
    const identity = dockerAuthIdentityAdvice(path, value);
    if (identity !== null) return identity;
    const alternative = UNSUPPORTED_DOCKER_AUTH_KEYS.get(path);
    if (alternative !== undefined) {
      return `a docker_auth option regauth does not support; ${alternative} (see README, Configuration)`;
    }
    return "unknown key (check the spelling; regauth does not ignore keys it does not know)";
  }
  if (message === "Expected required property") return "required";
  // A secret of the wrong type (a numeric client_secret YAML read as a number, a list) is not echoed.
  const secret = /pass(word)?|secret|credential/i.test(path.split(".").at(-1) ?? "");
  const got = value === undefined || secret ? "" : `, got ${JSON.stringify(value)?.slice(0, 60)}`;
  return `${message.charAt(0).toLowerCase()}${message.slice(1)}${got}`;
}
