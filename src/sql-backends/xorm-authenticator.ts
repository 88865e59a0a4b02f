/**
 * `xorm_auth`: users from docker_auth's `xorm_user` table (authn/xorm_authn.go, reference
 * docker_auth.md §2.3). As docker_auth: an empty name or password is not ours (no-match), the
 * newest row for a name wins (`WHERE username = ? ORDER BY id DESC`), a bcrypt mismatch is a
 * deny, and the JSON `labels` column feeds the ACL. Differences, each for safety:
 *   - the name is compared exactly: MySQL's default collations compare case- and
 *     trailing-space-insensitively, so `ALICE` or `alice ` would otherwise log in with alice's row
 *     under another token subject; rows the server returns are filtered to the exact spelling;
 *   - a name no row can hold (NUL, longer than the column's 128 characters) is no-match without a
 *     query (PostgreSQL would answer NUL with an encoding error, i.e. an outage);
 *   - passwords are checked by the shared PasswordVerifier (cache and concurrency limit);
 *   - when the database cannot answer, the login fails closed with 401 and an error in the log
 *     (docker_auth answers 500 with the driver's message); the pool recovers by itself;
 *   - the table is never created or altered unless `create_tables: true`.
 */
import type { Labels } from "../acl.ts";
import type { Authenticator, AuthnOutcome } from "../authn/authenticator.ts";
import { DENY, NO_MATCH } from "../authn/authenticator.ts";
import type { PasswordVerifier } from "../authn/password-verifier.ts";
import { Unauthorized } from "../errors.ts";
import { log } from "../log.ts";
import type { SqlBackendSettings } from "./config.ts";
import { describeFailure, SqlDatabase } from "./sql-database.ts";
import { asTableProblem, checkTable, USER_TABLE } from "./tables.ts";

export const XORM_AUTHENTICATOR_NAME = "xorm_auth";

/** docker_auth's column is VARCHAR(128): a longer name cannot be in the table. */
export const MAX_USERNAME_CHARACTERS = 128;
/**
 * Rows fetched per name. More than one comes back only when the server's collation folds case or
 * trailing spaces (MySQL); the exact spelling is picked among them, newest first.
 */
const MAX_ROWS_PER_NAME = 20;
/** What docker_auth's Go bcrypt accepts and Bun verifies: $2a$, $2b$, $2y$. */
const BCRYPT_HASH = /^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/;

export interface XormAuthenticator extends Authenticator {
  /** Resolves when the start-up check (connect, find the table) has finished, either way. */
  readonly ready: Promise<void>;
  close(): Promise<void>;
}

interface UserRow {
  id: unknown;
  username: unknown;
  password_hash: unknown;
  labels: unknown;
}

export function xormAuthenticator(
  settings: SqlBackendSettings,
  verifier: PasswordVerifier,
): XormAuthenticator {
  return new XormLogin(settings, verifier);
}

class XormLogin implements XormAuthenticator {
  readonly name = XORM_AUTHENTICATOR_NAME;
  readonly ready: Promise<void>;
  private readonly db: SqlDatabase;
  /** Last known state, so that recoveries and table problems are logged when they change. */
  private state: "unknown" | "ok" | "failing" = "unknown";

  constructor(
    private readonly settings: SqlBackendSettings,
    private readonly verifier: PasswordVerifier,
  ) {
    this.db = new SqlDatabase(settings.connection, { createMissingFile: settings.createTables });
    this.ready = this.checkAtStart();
  }

  /** Never fatal: the database may come up after regauth does. */
  private async checkAtStart(): Promise<void> {
    try {
      await checkTable(this.db, USER_TABLE, this.settings.createTables);
      this.state = "ok";
      log.info("xorm_auth reads users from the database", {
        database: this.db.display,
        table: USER_TABLE.name,
      });
    } catch (error) {
      this.state = "failing";
      log.error("xorm_auth cannot use the database; its logins will fail until it can", {
        status: 503,
        database: this.db.display,
        error: describeFailure(error),
      });
    }
  }

  async authenticate({ username, password }: { username: string; password: string }): Promise<AuthnOutcome> {
    if (username === "" || password === "") return NO_MATCH;
    if (username.includes("\0") || [...username].length > MAX_USERNAME_CHARACTERS) return NO_MATCH;
    let rows: UserRow[];
    try {
      rows = await this.findRows(username);
    } catch (error) {
      this.failed(error, username);
      // Fail closed: neither allowed nor "unknown" (which could let `docker login` register a
      // name the table owns). The client gets a plain 401 and may retry.
      throw new Unauthorized();
    }
    if (this.state === "failing")
      log.info("xorm_auth database answers again; its logins work", { database: this.db.display });
    this.state = "ok";
    const row = rows.find((candidate) => candidate.username === username);
    if (!row) return NO_MATCH;
    const hash = typeof row.password_hash === "string" ? row.password_hash.trim() : "";
    if (!BCRYPT_HASH.test(hash)) {
      log.warn("xorm_auth login refused: password_hash is not a bcrypt hash", {
        account: username,
        id: String(row.id),
      });
      return DENY;
    }
    const labels = parseLabels(row.labels);
    if (labels === null) {
      log.error("xorm_auth login refused: labels is not a JSON object of string lists", {
        account: username,
        id: String(row.id),
      });
      return DENY;
    }
    if (!(await this.verifier.verify(username, password, hash))) return DENY;
    return { kind: "allow", labels };
  }

  /** The rows for `username`, newest first; with create_tables, makes a table that went missing. */
  private async findRows(username: string): Promise<UserRow[]> {
    const select = () =>
      this.db.query<UserRow>(
        (sql) =>
          sql`SELECT id, username, password_hash, labels FROM xorm_user WHERE username = ${username} ORDER BY id DESC LIMIT ${MAX_ROWS_PER_NAME}`,
      );
    try {
      return await select();
    } catch (error) {
      // The database may have been down at start, before the table could be created.
      if (!this.settings.createTables || asTableProblem(error, this.db, USER_TABLE)?.kind !== "missing-table")
        throw error;
      await checkTable(this.db, USER_TABLE, true);
      return await select();
    }
  }

  private failed(error: unknown, username: string): void {
    const tableProblem = asTableProblem(error, this.db, USER_TABLE);
    const wasFailing = this.state === "failing";
    this.state = "failing";
    // The CREATE TABLE text is long: in full when the problem starts, briefly on each login.
    const message = tableProblem
      ? wasFailing
        ? `xorm_auth login refused: table ${USER_TABLE.name} is missing or lacks a column (see the earlier error)`
        : tableProblem.message
      : "xorm_auth database unavailable; login refused";
    log.error(message, {
      status: 503,
      database: this.db.display,
      account: username,
      error: tableProblem ? tableProblem.kind : describeFailure(error),
    });
  }

  close(): Promise<void> {
    return this.db.close();
  }
}

/**
 * The `labels` column: JSON text (PostgreSQL json, SQLite and MariaDB text) or an already parsed
 * object (MySQL's JSON type). NULL or empty is no labels; anything but `{name: [strings]}` is
 * null, as Go's json.Unmarshal into api.Labels would fail.
 */
export function parseLabels(value: unknown): Labels | null {
  if (value === null || value === undefined || value === "") return {};
  let parsed: unknown = value;
  if (typeof value === "string") {
    try {
      parsed = JSON.parse(value);
    } catch {
      return null;
    }
  } else if (value instanceof Uint8Array) {
    return parseLabels(new TextDecoder().decode(value));
  }
  if (parsed === null) return {};
  if (typeof parsed !== "object" || Array.isArray(parsed)) return null;
  const labels: Labels = {};
  for (const [key, list] of Object.entries(parsed as Record<string, unknown>)) {
    if (list === null) continue;
    if (!Array.isArray(list) || !list.every((item) => typeof item === "string")) return null;
    labels[key] = list;
  }
  return labels;
}
