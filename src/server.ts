/**
 * Wiring: from a loaded config to a running HTTP server. The order of the authentication and
 * authorization chains is decided here and nowhere else (README "Order of back-ends").
 */
import type { Database } from "bun:sqlite";
import { rmSync } from "node:fs";
import { ACCESS_TOKEN_AUTHENTICATOR, accessTokenAuthenticator } from "./access-tokens/authenticator.ts";
import { ensureAccessTokenKey } from "./access-tokens/key.ts";
import { databaseRegistrar } from "./accounts/registration.ts";
import {
  aclClaimingPatterns,
  aclRefusesEveryName,
  reservedNamesForRegistration,
} from "./accounts/reserved-names.ts";
import { randomBytes } from "node:crypto";
import { ARGON2ID_OPTIONS, findUser } from "./accounts/users.ts";
import type { Acl } from "./acl.ts";
import type { Authenticator } from "./authn/authenticator.ts";
import { type FailureCostPlan, FailureLatencyFloor } from "./authn/failure-latency.ts";
import { InFlightLogins } from "./authn/in-flight-logins.ts";
import { PasswordVerifier } from "./authn/password-verifier.ts";
import { databaseUsersAuthenticator } from "./authn/database-users.ts";
import { staticUsersAuthenticator } from "./authn/static-users.ts";
import { LoginThrottle, type Throttle } from "./authn/throttle.ts";
import { AuditLog } from "./audit/audit-log.ts";
import { auditOptions } from "./audit/config-schema.ts";
import { TokenAudit } from "./audit/token-audit.ts";
import { aclAuthorizer, type Authorizer } from "./authz/authorizer.ts";
import { databasePermissionsAuthorizer } from "./authz/database-permissions.ts";
import { type LoadedConfig, parseListenAddress } from "./config/load.ts";
import { bunTlsOptions } from "./config/tls.ts";
import { backgroundWriterFor } from "./db/background-writer.ts";
import { databasePath } from "./db/database.ts";
import { ExtAuthAuthenticator } from "./hooks/ext-auth.ts";
import { ExtAuthzAuthorizer } from "./hooks/ext-authz.ts";
import { createApiApp, createApp } from "./http/app.ts";
import type { ApiOptions } from "./http/api/plugin.ts";
import type { PagesOptions } from "./http/pages/plugin.ts";
import { ensureCredentialKey } from "./identity/credential-key.ts";
import { IdentityService } from "./identity/service.ts";
import type { AccessTokenKeyRef } from "./management/context.ts";
import { MAX_REQUEST_BODY_BYTES } from "./http/token-route.ts";
import { log } from "./log.ts";
import type { MetricsExporter } from "./metrics/exporter.ts";
import { instrumentAuthenticator, instrumentAuthorizer } from "./metrics/instrument.ts";
import { type AclXormAuthorizer, aclXormAuthorizer } from "./sql-backends/acl-xorm-authorizer.ts";
import { aclReloadIntervalMs, checkSqlSection } from "./sql-backends/config.ts";
import { xormAuthenticator } from "./sql-backends/xorm-authenticator.ts";
import type { TokenIssuer } from "./issue-token.ts";
import { CurrentIssuer } from "./reload/current-issuer.ts";
import { type RegistryIndexAccess, viewerPullCheck } from "./registry-index/catalog.ts";
import { registryHostOf } from "./registry-index/config-schema.ts";
import type { IndexChangeSink } from "./registry-index/changes.ts";
import { IndexSync, syncSettingsFrom } from "./registry-index/sync.ts";
import type { AccessTokenKey } from "./access-tokens/key.ts";
import { LiveKeySet } from "./token/key-set.ts";
import type { SigningKey } from "./token/keys.ts";
import { credentialLookup, RefreshTokens } from "./token/refresh-token.ts";
import {
  createWebhooks,
  effectiveWebhooksConfig,
  lazyWebhookKey,
  type Webhooks,
} from "./webhooks/webhooks.ts";
import type { RegistryEventsOptions } from "./http/registry-events-route.ts";
import { NotificationReceiver } from "./registry-index/receiver.ts";
import { loadNotificationSecret } from "./registry-index/secret.ts";
import { holdPortLock, PortLockError } from "./acme/port-lock.ts";
import { ownersOf, watchForeignListeners } from "./acme/port-watch.ts";

/** Seconds a connection may sit idle; also bounds clients that stop sending mid-request. */
const IDLE_TIMEOUT_SECONDS = 30;

/**
 * What a reload carries over from the issuer it replaces (docs/deployment.md "Reloading the
 * config"): the failed-login throttle, so a reload does not forgive guessing; the audit log and the
 * access token key, which belong to the database and data directory, and those need a restart.
 */
export interface KeptAcrossReload {
  throttle?: Throttle;
  /** The live key set, given the reloaded keys by the caller once the issuer is built (src/main.ts). */
  keySet?: LiveKeySet;
  auditLog?: AuditLog;
  accessTokenKey?: AccessTokenKey;
}

export function keptAcrossReload(issuer: TokenIssuer): KeptAcrossReload {
  return {
    ...(issuer.throttle ? { throttle: issuer.throttle } : {}),
    ...(issuer.audit ? { auditLog: issuer.audit.log } : {}),
    ...(issuer.accessTokenKey ? { accessTokenKey: issuer.accessTokenKey } : {}),
  };
}

export function buildIssuer(
  loaded: LoadedConfig,
  signingKey: SigningKey,
  verifier: PasswordVerifier,
  /** The accounts database (src/db/database.ts); without it, config users and ACL only. */
  database?: Database,
  kept: KeptAcrossReload = {},
): TokenIssuer {
  const { config } = loaded;
  const nowSeconds = () => Math.floor(Date.now() / 1000);
  const authenticators: Authenticator[] = [];
  // The audit log and the access token key live with the database (src/audit/, src/access-tokens/).
  const accessTokenKey = database ? (kept.accessTokenKey ?? ensureAccessTokenKey(loaded.dataDir)) : undefined;
  const auditLog = database
    ? (kept.auditLog ?? new AuditLog(database, backgroundWriterFor(database), auditOptions(config.audit)))
    : undefined;
  // First: a password that is an access token (prefix and checksum) is decided by one HMAC and one
  // indexed SELECT, and no other back-end ever sees it, nor spends argon2 or bcrypt on it.
  if (database && accessTokenKey)
    authenticators.push(
      accessTokenAuthenticator(database, accessTokenKey, backgroundWriterFor(database), {
        nowSeconds,
        ...(auditLog ? { audit: auditLog } : {}),
      }),
    );
  if (config.users) authenticators.push(staticUsersAuthenticator(config.users, verifier));
  if (database) {
    authenticators.push(databaseUsersAuthenticator(database, verifier, nowSeconds));
    // Unknown names cost what a database user's wrong password costs (timing parity). Made on
    // first use (the failure-latency calibration, just after start), off the main thread.
    verifier.useDummyHash(() => Bun.password.hash(randomBytes(18).toString("base64"), ARGON2ID_OPTIONS));
  }
  if (config.ext_auth) authenticators.push(new ExtAuthAuthenticator(config.ext_auth));
  if (config.ldap_auth) {
    // Loaded only with ldap_auth configured: a serve without LDAP does not evaluate ldapts and the
    // pool (issue 12 item 6). A synchronous require keeps buildIssuer synchronous.
    const { ldapAuthenticator } =
      require("./ldap/ldap-authenticator.ts") as typeof import("./ldap/ldap-authenticator.ts");
    authenticators.push(
      ldapAuthenticator(config.ldap_auth, {
        reservedAccounts: {
          has: (account) =>
            Object.hasOwn(config.users ?? {}, account) ||
            (database !== undefined && findUser(database, account) !== null),
        },
      }),
    );
  }
  // docker_auth's chain ends ldap_auth → mongo_auth → xorm_auth; regauth has no mongo_auth.
  if (config.xorm_auth)
    authenticators.push(xormAuthenticator(sqlSettings(config.xorm_auth, "xorm_auth"), verifier));
  const authorizers: Authorizer[] = [aclAuthorizer(loaded.acl)];
  // The ACL table continues the config ACL, as in docker_auth (acl → acl_mongo → acl_xorm): both
  // decide when a rule matches, deny rules included, so both come before the database's grants,
  // which only ever add (README "Order of back-ends").
  let aclTable: AclXormAuthorizer | undefined;
  if (config.acl_xorm) {
    const intervalMs = aclReloadIntervalMs(config.acl_xorm, "acl_xorm", []);
    if (intervalMs === null) throw new Error("acl_xorm.cache_ttl was validated at load; unreachable");
    aclTable = aclXormAuthorizer(sqlSettings(config.acl_xorm, "acl_xorm"), intervalMs);
    authorizers.push(aclTable);
  }
  if (database) {
    authorizers.push(
      databasePermissionsAuthorizer(database, {
        personalNamespaces: config.accounts.personal_namespaces,
        groupLabels: config.accounts.group_labels,
      }),
    );
  }
  if (config.ext_authz) authorizers.push(new ExtAuthzAuthorizer(config.ext_authz));
  const registrationMode = config.registration.mode;
  if (database && registrationMode === "open" && config.accounts.personal_namespaces) {
    log.warn("registration is open and personal namespaces are on", {
      effect: "anyone who can reach regauth can create an account NAME and push to NAME/*",
      fix: "registration.mode approval, or accounts.personal_namespaces false",
    });
  }
  const services = config.token.services ?? null;
  if (database && registrationMode !== "off") warnAboutReservedPatterns(loaded.acl, services);
  const failureLatency = new FailureLatencyFloor();
  failureLatency.calibrate(failureCostPlan(config, verifier));
  // Latency and errors per back-end (LDAP, hooks, SQL), only when metrics are exported.
  const measured = config.metrics.enabled;
  return {
    issuer: config.token.issuer,
    ttlSeconds: config.token.expiration,
    services: config.token.services ? new Set(config.token.services) : null,
    authenticators: measured ? authenticators.map(instrumentAuthenticator) : authenticators,
    authorizers: measured ? authorizers.map(instrumentAuthorizer) : authorizers,
    signingKey,
    ...(kept.keySet
      ? { keySet: kept.keySet }
      : loaded.keySet
        ? {
            keySet: new LiveKeySet(loaded.keySet, loaded.keyPaths?.inDataDir ? loaded.dataDir : null, {
              useThumbprintKid: config.token.disable_legacy_key_id,
              maxTokenLifetimeSeconds: config.token.expiration,
            }),
          }
        : {}),
    verifier,
    nowSeconds,
    throttle: kept.throttle ?? new LoginThrottle(),
    failureLatency,
    inFlightLogins: new InFlightLogins(),
    ...(auditLog ? { audit: new TokenAudit(auditLog, config.audit.token_decisions) } : {}),
    ...(accessTokenKey ? { accessTokenKey } : {}),
    ...(loaded.refreshSecret && config.token.refresh_expiration > 0
      ? {
          refreshTokens: new RefreshTokens(
            loaded.refreshSecret,
            config.token.refresh_expiration,
            credentialLookup(config.users, database, nowSeconds),
          ),
        }
      : {}),
    ...(database && registrationMode !== "off"
      ? {
          registrar: databaseRegistrar(
            database,
            verifier,
            registrationMode,
            reservedNamesForRegistration(config.acl ?? [], loaded.acl, {
              services,
              liveAcls: () => (aclTable ? [aclTable.currentAcl] : []),
              knownAccounts: Object.keys(config.users ?? {}),
            }),
          ),
        }
      : {}),
  };
}

/**
 * Closes what an issuer holds open: LDAP connection pools, SQL pools and the acl_xorm refresh
 * timer. Hooks run one process per request and hold nothing. For an issuer a reload replaced,
 * once its requests have drained (src/reload/current-issuer.ts).
 */
export async function closeIssuer(issuer: TokenIssuer): Promise<void> {
  const closable = [...issuer.authenticators, ...issuer.authorizers].filter(
    (part): part is typeof part & { close(): void | Promise<void> } =>
      typeof (part as { close?: unknown }).close === "function",
  );
  await Promise.allSettled(closable.map(async (part) => part.close()));
}

/** Issue 8 H1, review finding 1: say once which names registration refuses, so "not available" is no riddle. */
function warnAboutReservedPatterns(acl: Acl, services: readonly string[] | null): void {
  const { accounts, namespaces } = aclClaimingPatterns(acl, services);
  if (aclRefusesEveryName(acl, services)) {
    log.warn(
      "registration refuses every name: the ACL's patterns could give any new account's namespace or name to someone else",
      {
        patterns: [...new Set([...namespaces, ...accounts])].join(" "),
        fix: "registration.mode off, or rules that name namespaces without label or capture placeholders",
      },
    );
    return;
  }
  if (accounts.length > 0)
    log.warn("registration refuses names the ACL's account patterns match", {
      patterns: accounts.join(" "),
      fix: "create those accounts with `regauth user add`",
    });
  // Literal first components (`prod/*`) were always reserved and need no riddle-solving.
  const patterned = namespaces.filter(
    (source) => source.startsWith("/") || /[*?[\\$]/.test(source.split("/")[0] ?? ""),
  );
  if (patterned.length > 0)
    log.warn("registration refuses names the ACL's repository name patterns could match under", {
      patterns: patterned.join(" "),
      fix: "create those accounts with `regauth user add`",
    });
}

/** A section load.ts has already checked; reaching here with problems is a programming error. */
function sqlSettings(section: Parameters<typeof checkSqlSection>[0], path: string) {
  const problems: Parameters<typeof checkSqlSection>[2] = [];
  const settings = checkSqlSection(section, path, problems);
  if (!settings)
    throw new Error(`${path} was validated at load: ${problems.map((p) => p.message).join("; ")}`);
  return settings;
}

/**
 * What a failed login can cost, known from the config (review L5, src/authn/failure-latency.ts):
 * the dummy hash, one config hash of each kind (bcrypt cost, argon2 parameters), the LDAP
 * operation timeout; ext_auth's cost is unknown, so the floor also follows its failures.
 */
function failureCostPlan(config: LoadedConfig["config"], verifier: PasswordVerifier): FailureCostPlan {
  const probe = randomBytes(18).toString("base64"); // a password no hash matches
  const oneHashPerKind = new Map<string, string>();
  for (const user of Object.values(config.users ?? {}))
    if (user.password !== undefined) oneHashPerKind.set(hashKind(user.password), user.password);
  return {
    hashChecks: [
      () => verifier.dummyCheck(probe),
      ...[...oneHashPerKind.values()].map((hash) => () => Bun.password.verify(probe, hash)),
    ],
    fixedMs: config.ldap_auth ? config.ldap_auth.timeout_seconds * 1000 : 0,
    adaptive: config.ext_auth !== undefined,
  };
}

/** A hash's algorithm and cost parameters without salt and digest: `$2b$10`, `$argon2id$v=19$m=...`. */
function hashKind(hash: string): string {
  return hash
    .split("$")
    .slice(0, hash.startsWith("$argon2") ? 4 : 3)
    .join("$");
}

/** What the management API needs besides the config and the issuer (docs/api.md). */
export interface ManagementServices {
  db: Database;
  audit: AuditLog;
  accessTokenKey: AccessTokenKeyRef;
  maxTokenLifetimeDays: number | null;
  /**
   * Outgoing webhooks (src/webhooks/, issue 11): `webhooks.sink` is the IndexChangeSink the
   * image index calls; serve starts `webhooks.dispatcher` (src/main.ts).
   */
  webhooks: Webhooks;
  /** The crawl that heals the image index (issue 11), when notifications.registry_url is set. */
  indexSync?: IndexSync;
  /** Sign-in with identity providers (issue 15), when identity_providers.oidc lists any. */
  identity?: IdentityService;
}

/**
 * The index sync of a config (null without notifications.registry_url), signing with the key
 * current at each request; `sink`: the webhooks (src/webhooks/), called in each reconcile transaction.
 */
export function buildIndexSync(
  loaded: LoadedConfig,
  issuer: TokenIssuer,
  db: Database,
  audit: AuditLog,
  sink?: IndexChangeSink,
): IndexSync | null {
  const settings = syncSettingsFrom(
    loaded,
    () => issuer.keySet?.signingKeyAt(Math.floor(Date.now() / 1000)) ?? issuer.signingKey,
    { audit, ...(sink ? { sink } : {}) },
  );
  return settings ? new IndexSync(db, settings) : null;
}

/** The catalog's pull checks, by the current issuer's chain (a reload's new rules apply at once). */
function registryIndexAccess(
  loaded: LoadedConfig,
  issuerOrCurrent: TokenIssuer | CurrentIssuer,
  services: ManagementServices,
): RegistryIndexAccess | undefined {
  if (!loaded.config.notifications.enabled) return undefined;
  const registryHost = registryHostOf(loaded.config.notifications);
  const sync = services.indexSync;
  return {
    // Each check runs on the issuer current when it starts and holds it to its end, as a token
    // request does: a reload meanwhile does not close the LDAP or SQL pools under it.
    pullCheck: async (viewer, ip) => async (names) => {
      const current =
        issuerOrCurrent instanceof CurrentIssuer ? issuerOrCurrent : new CurrentIssuer(issuerOrCurrent);
      return current.use(async (issuer) => {
        // The registry's service, as registry-config prints it (token.services[0] ?? "registry").
        const service = issuer.services ? ([...issuer.services][0] ?? "registry") : "registry";
        return (await viewerPullCheck(issuer, viewer, service, ip))(names);
      });
    },
    registryHost,
    sync: sync ? (trigger) => sync.run(trigger) : null,
  };
}

function tokenAuthenticatorOf(issuer: TokenIssuer): { tokenAuthenticator?: Authenticator } {
  const found = issuer.authenticators.find((a) => a.name === ACCESS_TOKEN_AUTHENTICATOR);
  return found ? { tokenAuthenticator: found } : {};
}

/** The audit log and access token key the management API writes with: the token path's own. */
export function managementServices(
  loaded: LoadedConfig,
  issuer: TokenIssuer,
  db: Database,
): ManagementServices {
  const audit =
    issuer.audit?.log ?? new AuditLog(db, backgroundWriterFor(db), auditOptions(loaded.config.audit));
  const webhooks = createWebhooks(
    db,
    // notifications.enabled false turns the whole feature off, webhooks included (issue 11 item 6).
    {
      config: effectiveWebhooksConfig(loaded.config),
      registryHost: registryHostOf(loaded.config.notifications),
    },
    lazyWebhookKey(loaded.dataDir),
  );
  // What a crawl finds new goes to the webhooks too, as a notification's changes do.
  const indexSync = buildIndexSync(loaded, issuer, db, audit, webhooks.sink);
  return {
    db,
    audit,
    accessTokenKey: issuer.accessTokenKey ?? ensureAccessTokenKey(loaded.dataDir),
    maxTokenLifetimeDays: loaded.config.access_tokens.max_lifetime_days ?? null,
    webhooks,
    ...(indexSync ? { indexSync } : {}),
    ...(loaded.config.identity_providers.oidc.length + loaded.config.identity_providers.github.length > 0
      ? {
          identity: new IdentityService(
            loaded.config.identity_providers,
            loaded.config.server.path_prefix,
            ensureCredentialKey(loaded.dataDir),
            identityReservedNames(loaded),
          ),
        }
      : {}),
  };
}

function apiOptions(
  loaded: LoadedConfig,
  issuerOrCurrent: TokenIssuer | CurrentIssuer,
  services: ManagementServices,
): ApiOptions {
  // The verifier, throttle and access token authenticator are kept across reloads: the first
  // issuer's serve for every later one.
  const issuer = issuerOrCurrent instanceof CurrentIssuer ? issuerOrCurrent.issuer : issuerOrCurrent;
  const { server } = loaded.config;
  return {
    db: services.db,
    verifier: issuer.verifier,
    ...(issuer.throttle ? { throttle: issuer.throttle } : {}),
    audit: services.audit,
    accessTokenKey: services.accessTokenKey,
    ...tokenAuthenticatorOf(issuer),
    config: {
      personalNamespaces: loaded.config.accounts.personal_namespaces,
      maxTokenLifetimeDays: services.maxTokenLifetimeDays,
    },
    maxBodyBytes: loaded.config.api.max_body_bytes,
    realIp: { header: server.real_ip_header, position: server.real_ip_pos },
    webhooks: services.webhooks.services,
    ...withRegistryIndex(registryIndexAccess(loaded, issuerOrCurrent, services)),
  };
}

function withRegistryIndex(access: RegistryIndexAccess | undefined): { registryIndex?: RegistryIndexAccess } {
  return access ? { registryIndex: access } : {};
}

/**
 * The names a first sign-in through a provider may not create: those registration refuses (the
 * account owns NAME/*), and the config's own users, whose name a database account would shadow.
 */
function identityReservedNames(loaded: LoadedConfig): { has(name: string): boolean } {
  const { config } = loaded;
  const registration = reservedNamesForRegistration(config.acl ?? [], loaded.acl, {
    services: config.token.services ?? null,
    knownAccounts: Object.keys(config.users ?? {}),
  });
  const configUsers = new Set(Object.keys(config.users ?? {}));
  return { has: (name) => configUsers.has(name) || registration.has(name) };
}

/** The token server's app; with the management API under /api/v1 unless `api.addr` gives it its own listener. */
export function buildApp(
  loaded: LoadedConfig,
  issuer: TokenIssuer | CurrentIssuer,
  services?: ManagementServices,
  metricsExporter?: MetricsExporter,
  /** The registry's notifications (registryEventsOptions); absent: the route is not there. */
  registryEvents?: RegistryEventsOptions | null,
) {
  const { server, api } = loaded.config;
  const mountHere = services !== undefined && api.enabled && api.addr === undefined;
  return createApp({
    ...(metricsExporter ? { metrics: metricsExporter } : {}),
    ...(registryEvents ? { registryEvents } : {}),
    readinessProblem: readinessProblem(issuer, services?.db),
    issuer,
    pathPrefix: server.path_prefix,
    realIp: { header: server.real_ip_header, position: server.real_ip_pos },
    hsts: server.hsts,
    // token.issuer, which a reload may change.
    basicRealm: issuer instanceof CurrentIssuer ? () => issuer.issuer.issuer : loaded.config.token.issuer,
    databasePath: databasePath(loaded.dataDir),
    ...(mountHere ? { api: apiOptions(loaded, issuer, services) } : {}),
    // The web interface goes where the API goes: an operator who put the API on a loopback
    // listener (api.addr) or turned it off did not mean management to stay open here.
    ...(mountHere && loaded.config.web.enabled ? { pages: pagesOptions(loaded, issuer, services) } : {}),
  });
}

/** The web interface's services (docs/web.md): the API's, plus the sign-in chain of the issuer serving now. */
export function pagesOptions(
  loaded: LoadedConfig,
  issuer: TokenIssuer | CurrentIssuer,
  services: ManagementServices,
): PagesOptions {
  const { web, server } = loaded.config;
  return {
    api: apiOptions(loaded, issuer, services),
    issuer: () => (issuer instanceof CurrentIssuer ? issuer.issuer : issuer),
    sessions: { idleSeconds: web.session_idle_minutes * 60, maxSeconds: web.session_max_hours * 3600 },
    secureCookie: web.secure_cookie ?? (server.certificate !== undefined || server.letsencrypt !== undefined),
    registryHost: registryHostOf(loaded.config.notifications),
    ...(services.identity ? { identity: services.identity } : {}),
  };
}

/**
 * /readyz: the signing key is loaded and the database answers a read. bun:sqlite is synchronous,
 * so the bound is the connection's busy_timeout (REQUEST_PATH_BUSY_TIMEOUT_MS), and a read in WAL
 * mode waits for no writer anyway; a locked, damaged or vanished file is an error here.
 */
function readinessProblem(
  issuer: TokenIssuer | CurrentIssuer,
  db: Database | undefined,
): () => string | null {
  return () => {
    const serving = issuer instanceof CurrentIssuer ? issuer.issuer : issuer;
    if (!serving.signingKey && !serving.keySet) return "no signing key loaded";
    if (!db) return null;
    try {
      db.query("SELECT count(*) FROM users WHERE rowid = 1").get();
      return null;
    } catch (error) {
      return `the accounts database cannot be read: ${(error as Error).message}`;
    }
  };
}

/** The management API's own app when `api.addr` is set; else null (it is on the token listener). */
export function buildApiApp(
  loaded: LoadedConfig,
  issuer: TokenIssuer | CurrentIssuer,
  services: ManagementServices,
) {
  const { server, api } = loaded.config;
  if (!api.enabled || api.addr === undefined) return null;
  return createApiApp({
    pathPrefix: server.path_prefix,
    realIp: { header: server.real_ip_header, position: server.real_ip_pos },
    hsts: server.hsts,
    basicRealm: loaded.config.token.issuer,
    databasePath: databasePath(loaded.dataDir),
    api: apiOptions(loaded, issuer, services),
    ...(loaded.config.web.enabled ? { pages: pagesOptions(loaded, issuer, services) } : {}),
  });
}

const BIND_FAILURES: Record<string, string> = {
  EADDRINUSE: "the address is already in use (another regauth, or another program)",
  EADDRNOTAVAIL: "that is not an address of this host",
  EACCES: "permission denied (a port below 1024 needs CAP_NET_BIND_SERVICE)",
};

function bindFailureCode(error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code !== undefined && Object.hasOwn(BIND_FAILURES, code) ? code : undefined;
}

/** The listen address cannot be bound: taken by another program, or not an address of this host. */
export class ListenError extends Error {
  constructor(addr: string, cause: unknown) {
    const code = bindFailureCode(cause);
    const reason = code ? BIND_FAILURES[code] : (cause as Error | undefined)?.message || String(cause);
    super(
      `cannot listen on ${addr}: ${reason}. Choose another with --addr HOST:PORT (or REGAUTH_ADDR, or server.addr in the config file)`,
    );
  }
}

/**
 * Binds the TCP listen address and lets it go at once, so that serve can stop with a clear error
 * before its first run creates a key and a database in the data directory (issue 12). The real
 * listen comes later; a program that takes the port in between still gets a ListenError there.
 */
export function checkCanListen(server: LoadedConfig["config"]["server"]): void {
  if (server.net !== "tcp") return;
  const address = parseListenAddress(server.addr);
  if (!address) throw new Error(`invalid server.addr ${server.addr}`); // validated at load; unreachable
  // With an ACME certificate the listeners set SO_REUSEPORT (swapListener): the bind below alone
  // lets a second regauth through while the first still orders. Held for the process's life
  // (api.addr's is taken in listen, before its bind).
  if (server.letsencrypt)
    try {
      holdPortLock(address.port);
    } catch (error) {
      throw new ListenError(server.addr, error);
    }
  try {
    Bun.listen({ hostname: address.hostname, port: address.port, socket: { data() {} } }).stop(true);
  } catch (error) {
    throw new ListenError(server.addr, error);
  }
}

export interface RunningServer {
  url: string;
  /** The management API's own listener, when `api.addr` is set. */
  apiUrl?: string;
  stop(): Promise<void>;
  /** With an ACME certificate (issue 16): serve `next` from now on, without a dropped connection. */
  replaceCertificate?(next: PemCertificate): Promise<void>;
}

/** A certificate chain and its key, in PEM, from an ACME CA (src/acme/). */
export interface PemCertificate {
  cert: string;
  key: string;
}

/** Bun.serve's `tls` for an ACME certificate: the same version, suite and curve settings as files get. */
function acmeTls(server: LoadedConfig["config"]["server"], certificate: PemCertificate) {
  return { cert: certificate.cert, key: certificate.key, ...bunTlsOptions(server) };
}

/**
 * Swaps an app's listener for one serving `tls` (issue 16): Bun's server.reload() keeps the TLS
 * context it started with (tried on Bun 1.4.5; oven-sh/bun#43815, open: no in-process way to
 * rotate a Bun.serve certificate), so a second listener binds the same port with
 * SO_REUSEPORT, new connections go to either, and after SWAP_GRACE_MS the old one stops accepting
 * and finishes its requests (stop() without force).
 */
async function swapListener(
  app: ReturnType<typeof buildApp> | NonNullable<ReturnType<typeof buildApiApp>>,
  options: Parameters<ReturnType<typeof buildApp>["listen"]>[0] & object,
): Promise<void> {
  const old = app.server;
  app.listen(options as Parameters<typeof app.listen>[0]);
  await Bun.sleep(SWAP_GRACE_MS);
  await old?.stop();
}

/**
 * Both listeners accept for this long before the old one stops. Bun's stop(), even unforced,
 * closes the connections that have not sent a whole request yet (a TLS handshake under way, an
 * idle keep-alive). Measured with two curl loops (a new connection per request): stopping at once
 * reset 13 connections in 30 swaps; after a second, 5 in 40 swaps at 160 new connections a second
 * (0.08% of the requests), and 4 in 6 swaps of the binary at 30 a second on a busy machine; Bun's
 * fetch, which retries such a reset, saw none in 41,394.
 */
const SWAP_GRACE_MS = 1000;

export function listen(
  loaded: LoadedConfig,
  app: ReturnType<typeof buildApp>,
  apiApp?: ReturnType<typeof buildApiApp>,
  /** From server.letsencrypt (issue 16); the listeners then serve it and can swap it. */
  certificate?: PemCertificate,
  /** `server.workers` above 1: every worker binds the token port (src/serve/supervisor.ts). */
  sharing: { reusePort: boolean } = { reusePort: false },
): RunningServer {
  const running = listenTokenServer(loaded, app, certificate, sharing.reusePort);
  const apiAddr = loaded.config.api.addr;
  if (!apiApp || apiAddr === undefined) return running;
  const address = parseListenAddress(apiAddr);
  if (!address) throw new Error(`invalid api.addr ${apiAddr}`); // validated at load; unreachable
  try {
    // Its SO_REUSEPORT with an ACME certificate: one regauth per port (src/acme/port-lock.ts).
    const tokenPort = parseListenAddress(loaded.config.server.addr)?.port;
    if (certificate && address.port !== tokenPort) holdPortLock(address.port);
    apiApp.listen({ ...listenOptions(loaded, certificate), hostname: address.hostname, port: address.port });
  } catch (error) {
    void running.stop();
    if (bindFailureCode(error) || error instanceof PortLockError) throw new ListenError(apiAddr, error);
    throw error;
  }
  const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname;
  const tls = loaded.config.server.certificate !== undefined || certificate !== undefined;
  const apiPort = apiApp.server?.port ?? address.port;
  return {
    url: running.url,
    apiUrl: `${tls ? "https" : "http"}://${host}:${apiPort}`,
    stop: async () => {
      await Promise.all([running.stop(), apiApp.stop()]);
    },
    ...(running.replaceCertificate
      ? {
          replaceCertificate: async (next: PemCertificate) => {
            await running.replaceCertificate?.(next);
            await swapListener(apiApp, {
              ...listenOptions(loaded, next),
              hostname: address.hostname,
              port: apiPort,
            });
          },
        }
      : {}),
  };
}

function listenOptions(loaded: LoadedConfig, certificate?: PemCertificate) {
  const { server } = loaded.config;
  const tls = certificate
    ? acmeTls(server, certificate)
    : server.certificate && server.key
      ? { cert: Bun.file(server.certificate), key: Bun.file(server.key), ...bunTlsOptions(server) }
      : undefined;
  return {
    // The API's body limit is checked by the API itself (413); Bun's limit must not be lower.
    maxRequestBodySize: Math.max(MAX_REQUEST_BODY_BYTES, loaded.config.api.max_body_bytes),
    idleTimeout: IDLE_TIMEOUT_SECONDS,
    // An ACME certificate is swapped by a second listener on the port (swapListener).
    reusePort: certificate !== undefined,
    development: false,
    ...(tls ? { tls } : {}),
  };
}

function listenTokenServer(
  loaded: LoadedConfig,
  app: ReturnType<typeof buildApp>,
  certificate?: PemCertificate,
  reusePort = false,
): RunningServer {
  const { server } = loaded.config;
  // Versions, suites and curves: src/config/tls.ts (issue 8: no CBC-SHA1 suites by default).
  const tls = certificate
    ? acmeTls(server, certificate)
    : server.certificate && server.key
      ? { cert: Bun.file(server.certificate), key: Bun.file(server.key), ...bunTlsOptions(server) }
      : undefined;
  const common = {
    maxRequestBodySize: Math.max(
      MAX_REQUEST_BODY_BYTES,
      loaded.config.api.max_body_bytes,
      // The notification route checks its own limit (413); Bun's must not be lower.
      loaded.config.notifications.enabled ? loaded.config.notifications.max_body_bytes : 0,
    ),
    idleTimeout: IDLE_TIMEOUT_SECONDS,
    // Elysia defaults to SO_REUSEPORT, which lets a second regauth (a stale one, or one with
    // another key) bind the same port and get half the traffic. A taken port must be an error.
    // With an ACME certificate it is on, for swapListener: a second regauth still stops with
    // EADDRINUSE (checkCanListen binds without it; tried; and holds src/acme/port-lock.ts for the
    // time before this listen, while it orders); only a program of the same user that
    // sets SO_REUSEPORT itself could join (Linux requires the same effective UID).
    // With server.workers, only this server's own workers share it, under the supervisor's lock
    // (src/serve/port-lock.ts).
    reusePort: reusePort || certificate !== undefined,
    // Elysia turns on Bun's development mode unless NODE_ENV=production; it renders error pages
    // with stack traces. Never for a server.
    development: false,
    ...(tls ? { tls } : {}),
  };
  if (server.net === "unix") {
    rmSync(server.addr, { force: true }); // a stale socket from a previous run (docker_auth does the same)
    app.listen({ ...common, unix: server.addr } as unknown as Parameters<typeof app.listen>[0]);
    return { url: `unix:${server.addr}`, stop: async () => void (await app.stop()) };
  }
  const address = parseListenAddress(server.addr);
  if (!address) throw new Error(`invalid server.addr ${server.addr}`); // validated at load; unreachable
  try {
    app.listen({ ...common, hostname: address.hostname, port: address.port });
  } catch (error) {
    // Taken since checkCanListen; anything else (a TLS file, say) is not about the address.
    if (bindFailureCode(error)) throw new ListenError(server.addr, error);
    throw error;
  }
  const port = app.server?.port ?? address.port;
  const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname;
  if (certificate && server.letsencrypt) {
    // SO_REUSEPORT lets any program of this user join the port (an older regauth, an Elysia app):
    // nothing refuses it, so the log names it (src/acme/port-watch.ts).
    const stopWatching = watchForeignListeners(port, (inodes) => {
      const owners = ownersOf(inodes);
      if (owners.length > 0 && owners.every((owner) => owner.family)) return; // sharing by design
      log.error("another process listens on this port too and gets part of its connections; stop it", {
        addr: server.addr,
        processes:
          owners
            .filter((owner) => !owner.family)
            .map((owner) => `${owner.pid} ${owner.command}`)
            .join("; ") || "not readable (another user's, or gone)",
      });
    });
    // The certificate's name, not the listen address: what clients dial and TLS verifies.
    return {
      url: `https://${server.letsencrypt.host}:${port}`,
      stop: async () => {
        stopWatching();
        await app.stop();
      },
      replaceCertificate: (next) =>
        swapListener(app, { ...common, tls: acmeTls(server, next), hostname: address.hostname, port }),
    };
  }
  return { url: `${tls ? "https" : "http"}://${host}:${port}`, stop: async () => void (await app.stop()) };
}

/**
 * The registry's notifications in (issue 11; docs/registry-index.md): the receiver and what its
 * route needs, or null when `notifications.enabled` is false (then no route, no secret file, no
 * pruning). Reads, or on first use creates, the secret. `sink` is the webhooks' (src/webhooks/).
 */
export function registryEventsOptions(
  loaded: LoadedConfig,
  db: Database,
  audit: AuditLog | undefined,
  sink?: IndexChangeSink,
): RegistryEventsOptions | null {
  const { notifications } = loaded.config;
  if (!notifications.enabled) return null;
  const secret = loadNotificationSecret({
    dataDir: loaded.dataDir,
    source: loaded.source,
    secretFile: notifications.secret_file,
  });
  const receiver = new NotificationReceiver({
    db,
    writer: backgroundWriterFor(db),
    ...(audit ? { audit } : {}),
    ...(sink ? { sink } : {}),
  });
  return { receiver, secret, maxBodyBytes: notifications.max_body_bytes };
}
