/**
 * `ldap_auth`: docker_auth's LDAP authenticator (authn/ldap_auth.go, reference docker_auth.md §6)
 * on a bounded connection pool, with these differences, each for safety:
 *   - the filter value is escaped per RFC 4515 and the bind DN template per RFC 4514;
 *   - the token subject and ACL account are the directory's spelling of the name (the value of
 *     `account_attribute`, by default the attribute the filter compares with `${account}`), so
 *     `Alice`, `alice` and `alice ` — one entry under caseIgnoreMatch — are one account (A13);
 *   - connections are pooled, with connect and operation timeouts, and re-bound after reconnects;
 *   - when the server cannot answer, the login fails closed with 401 and an error in the log
 *     (docker_auth answers 500).
 */
import { FilterParser, InvalidCredentialsError, ResultCodeError } from "ldapts";
import type { Labels } from "../acl.ts";
import type { Authenticator, AuthnOutcome } from "../authn/authenticator.ts";
import { DENY, NO_MATCH } from "../authn/authenticator.ts";
import { ConfigError, type ConfigProblem, Unauthorized } from "../errors.ts";
import { log } from "../log.ts";
import {
  ACCOUNT_PLACEHOLDER,
  checkLdapConfig,
  type LdapAuthConfig,
  type LdapSettings,
  readBindPassword,
} from "./config.ts";
import { LdapConnectionPool } from "./connection-pool.ts";
import type { LdapConnection } from "./connection.ts";
import { ConnectionLost } from "./connection.ts";
import { escapeDnValue, escapeFilterValue, firstCommonName } from "./escaping.ts";

export const LDAP_AUTHENTICATOR_NAME = "ldap_auth";

/**
 * Result codes of a user's bind that mean "these credentials do not log in" rather than "the
 * server cannot answer" (RFC 4511 Appendix A): invalidCredentials (49, also AD's locked and
 * expired accounts), inappropriateAuthentication (48), unwillingToPerform (53, disabled accounts
 * on some servers), constraintViolation (19, password policy), invalidDNSyntax (34) and
 * noSuchObject (32) for a bind DN built from a name that is not there.
 */
const DENYING_BIND_RESULT_CODES = new Set([19, 32, 34, 48, 49, 53]);

/** The authenticator plus `close()`, which drops the pooled connections on shutdown. */
export interface LdapAuthenticator extends Authenticator {
  close(): void;
  /** For tests and metrics: connections handed out right now, and the bound. */
  readonly pool: { readonly inUse: number; readonly size: number };
}

export interface LdapAuthenticatorOptions {
  /**
   * Names that earlier authenticators own (config users, database accounts). The chain asks them first, so
   * the exact name never reaches LDAP; but `ADMIN` would, and must not become the account `admin`
   * through the directory's spelling and inherit ACL rules written for the local `admin`.
   */
  reservedAccounts?: { has(account: string): boolean };
}

export function ldapAuthenticator(
  section: LdapAuthConfig,
  options: LdapAuthenticatorOptions = {},
): LdapAuthenticator {
  const problems: ConfigProblem[] = [];
  const settings = checkLdapConfig(section, "ldap_auth", problems);
  // load.ts has already reported these; reaching here with problems is a programming error.
  if (!settings) throw new ConfigError("ldap_auth", problems);
  return new LdapLogin(settings, options.reservedAccounts ?? new Set());
}

/** Why a login could not be decided; becomes the log line, never the client's message. */
class DirectoryUnavailable extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DirectoryUnavailable";
  }
}

class LdapLogin implements LdapAuthenticator {
  readonly name = LDAP_AUTHENTICATOR_NAME;
  readonly pool: LdapConnectionPool;
  private readonly attributes: string[];
  private available = true;

  constructor(
    private readonly settings: LdapSettings,
    private readonly reservedAccounts: { has(account: string): boolean },
  ) {
    this.pool = new LdapConnectionPool(settings);
    const wanted = Object.values(settings.labels).map((label) => label.attribute);
    if (settings.accountAttribute) wanted.push(settings.accountAttribute);
    // "1.1" asks for no attributes at all (RFC 4511 §4.5.1.8) when there is nothing to read.
    this.attributes = wanted.length > 0 ? [...new Set(wanted)] : ["1.1"];
    if (settings.tls === "none" && !isLoopback(settings.host))
      log.warn("ldap_auth sends passwords in clear text; set tls: always or starttls", {
        ldap: settings.url,
      });
    if (!settings.accountAttribute)
      log.warn(
        "ldap_auth uses the account name as typed for tokens and ACLs; set account_attribute (e.g. uid) to use the directory's spelling",
        { ldap: settings.url },
      );
    if (!settings.initialBindAsUser) void this.checkServiceAccount();
  }

  /**
   * At start, connects and binds the service account once, so a wrong password, an untrusted
   * certificate or an unreachable server shows in the log right away rather than at the first
   * login. Never fatal: the directory may come up after regauth does.
   */
  private async checkServiceAccount(): Promise<void> {
    try {
      await this.withConnection((connection) => this.bindService(connection));
      log.info("ldap_auth connected and bound the service account", { ldap: this.settings.url });
    } catch (error) {
      this.available = false;
      log.error("ldap_auth cannot use the directory; LDAP logins will fail until it can", {
        status: 503,
        ldap: this.settings.url,
        error: describe(error),
      });
    }
  }

  async authenticate({ username, password }: { username: string; password: string }): Promise<AuthnOutcome> {
    // RFC 4513 §5.1.2: a simple bind with a DN and an empty password is an unauthenticated bind,
    // which many servers answer with success. Refuse before anything reaches the server.
    if (username === "" || password === "") return NO_MATCH;
    try {
      const outcome = await this.withConnection((connection) => this.login(connection, username, password));
      if (!this.available) {
        this.available = true;
        log.info("LDAP server answers again; LDAP logins work", { ldap: this.settings.url });
      }
      return outcome;
    } catch (error) {
      this.available = false;
      // Fail closed: the user is neither allowed nor "unknown" (which could let `docker login`
      // register a name the directory owns). The operator sees a 503-class error; the client gets
      // a plain 401, as for a wrong password, and may retry.
      log.error("LDAP server unavailable; LDAP login refused", {
        status: 503,
        ldap: this.settings.url,
        account: username,
        error: describe(error),
      });
      throw new Unauthorized();
    }
  }

  close(): void {
    this.pool.close();
  }

  /**
   * Runs one login on a pooled connection. A connection that had been sitting in the pool may
   * have been closed by the server (idle timeouts are common with Active Directory); a failure of
   * such a socket is retried once on a fresh connection before the directory counts as down.
   */
  private async withConnection<T>(work: (connection: LdapConnection) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const connection = await this.pool.acquire();
      let broken = true;
      try {
        await connection.open();
        const result = await work(connection);
        broken = false;
        return result;
      } catch (error) {
        const retry = attempt === 1 && connection.reused && isConnectionFailure(error);
        if (!retry) throw error;
      } finally {
        this.pool.release(connection, broken);
      }
    }
  }

  private async login(connection: LdapConnection, username: string, password: string): Promise<AuthnOutcome> {
    const { settings } = this;
    if (settings.initialBindAsUser) {
      const dn = settings.bindDn.replaceAll(ACCOUNT_PLACEHOLDER, escapeDnValue(username));
      if (!(await this.bindUser(connection, dn, password, username))) return DENY;
    } else if (connection.bindState !== "service") {
      await this.bindService(connection);
    }

    // The template is parsed with the escaped value in place: escaping leaves only literal
    // characters and `\XX`, which cannot close the assertion (RFC 4515 §3). config.ts has already
    // checked that the template parses.
    const filter = FilterParser.parseString(
      settings.filter.replaceAll(ACCOUNT_PLACEHOLDER, escapeFilterValue(username)),
    );
    const entries = await connection.search(settings.base, filter, this.attributes);
    if (entries.length === 0) return NO_MATCH;
    if (entries.length > 1) {
      log.error("ldap_auth filter matches more than one entry; refusing the login (fix base or filter)", {
        account: username,
        dns: entries.map((entry) => entry.dn),
      });
      return DENY;
    }
    const entry = entries[0] as (typeof entries)[number];
    // A bind with an empty DN is anonymous whatever the password (RFC 4513 §5.1.1): never a login.
    if (entry.dn.trim() === "") return DENY;

    if (!(await this.bindUser(connection, entry.dn, password, username))) return DENY;

    const values = attributeValues(entry);
    const account = this.canonicalAccount(username, values, entry.dn);
    if (account === null) return DENY;
    if (this.reservedAccounts.has(account)) {
      log.warn("ldap_auth login refused: the directory's name for it belongs to a config or database user", {
        account: username,
        canonical: account,
      });
      return DENY;
    }
    const labels: Labels = {};
    for (const [label, mapping] of Object.entries(settings.labels)) {
      const raw = values.get(mapping.attribute.toLowerCase());
      if (!raw || raw.length === 0) continue;
      labels[label] = raw.map((value) => {
        const parsed = mapping.parseCn ? (firstCommonName(value) ?? value) : value;
        return mapping.lowerCase ? parsed.toLowerCase() : parsed;
      });
    }
    return { kind: "allow", labels, account };
  }

  private async bindService(connection: LdapConnection): Promise<void> {
    let password = "";
    if (this.settings.bindPasswordFile !== undefined) {
      try {
        // Re-read for every service bind: a rotated password works without a restart.
        password = readBindPassword(this.settings.bindPasswordFile);
      } catch (error) {
        throw new DirectoryUnavailable(`cannot read bind_password_file: ${(error as Error).message}`);
      }
      if (password === "") throw new DirectoryUnavailable("bind_password_file is empty");
    }
    try {
      await connection.bind(this.settings.bindDn, password, "service");
    } catch (error) {
      if (error instanceof InvalidCredentialsError)
        throw new DirectoryUnavailable(`the directory refused bind_dn's password (${this.settings.bindDn})`);
      throw error;
    }
  }

  /** Binds as the user; false for a refused password, throws when the server could not answer. */
  private async bindUser(
    connection: LdapConnection,
    dn: string,
    password: string,
    username: string,
  ): Promise<boolean> {
    try {
      await connection.bind(dn, password, "user");
      return true;
    } catch (error) {
      if (error instanceof ResultCodeError && DENYING_BIND_RESULT_CODES.has(error.code)) {
        log.debug("ldap_auth bind refused", { account: username, code: error.code });
        return false;
      }
      throw error;
    }
  }

  /**
   * The directory's spelling of the account: among the values of the account attribute, the one
   * equal to what was typed under caseIgnoreMatch-like comparison (case and surrounding or
   * repeated spaces, RFC 4518 §2.6.1); or the only value, when the filter matched on another
   * attribute (e.g. mail). Null, with a log line, when that is ambiguous.
   */
  private canonicalAccount(username: string, values: Map<string, string[]>, dn: string): string | null {
    const attribute = this.settings.accountAttribute;
    if (!attribute) return username;
    const candidates = values.get(attribute.toLowerCase()) ?? [];
    const typed = normalizeForMatch(username);
    const matching = candidates.filter((value) => normalizeForMatch(value) === typed);
    if (matching.length >= 1) return matching[0] as string;
    if (candidates.length === 1) return candidates[0] as string;
    log.error("ldap_auth cannot tell the account name: account_attribute has no single value", {
      account: username,
      dn,
      attribute,
      values: candidates.length,
    });
    return null;
  }
}

/** Attribute values by lower-cased name (attribute names are case-insensitive, RFC 4512 §2.5). */
function attributeValues(entry: Record<string, unknown>): Map<string, string[]> {
  const values = new Map<string, string[]>();
  for (const [name, value] of Object.entries(entry)) {
    if (name === "dn") continue;
    const list = Array.isArray(value) ? value : [value];
    values.set(
      name.toLowerCase(),
      list.map((item) => (Buffer.isBuffer(item) ? item.toString("utf8") : String(item))),
    );
  }
  return values;
}

function normalizeForMatch(value: string): string {
  return value.trim().replace(/ +/g, " ").toLowerCase();
}

function isConnectionFailure(error: unknown): boolean {
  if (error instanceof ConnectionLost) return true;
  if (error instanceof ResultCodeError || error instanceof DirectoryUnavailable) return false;
  const message = error instanceof Error ? error.message : "";
  return /Connection closed|Socket error|Socket connection not established|ECONNRESET|EPIPE/.test(message);
}

function describe(error: unknown): string {
  if (error instanceof ResultCodeError) return `${error.name} (code ${error.code}): ${error.message}`;
  if (error instanceof Error) return error.message.split("\n")[0] ?? error.name;
  return String(error);
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host.startsWith("127.");
}
