/**
 * One external database, through Bun's built-in SQL client (PostgreSQL, MySQL/MariaDB, SQLite):
 * a small bounded pool, a connect timeout, a timeout on every query (Bun has none: the query is
 * cancelled when it runs out), TLS as the conn_string asked, and every setting passed as an
 * option so that DATABASE_URL, PGHOST and friends in regauth's environment cannot redirect it.
 * Bun's pool reconnects by itself after the server restarts; a query that fails because its
 * pooled connection was closed underneath it is retried once on a fresh one.
 *
 * Queries are tagged templates: every value is a bound parameter, never text in the SQL.
 */
import { SQL } from "bun";
import type { ConnectionSettings, ServerConnection } from "./conn-string.ts";

/** Connections per database. Logins are one indexed SELECT each and the host has two cores. */
export const MAX_CONNECTIONS = 4;
const DEFAULT_CONNECT_TIMEOUT_SECONDS = 5;
/** A query that takes longer fails the login (closed, 401) rather than holding the client. */
export const QUERY_TIMEOUT_MS = 5_000;
/** Idle connections are closed, so a database restart or failover leaves no stale sockets for long. */
const IDLE_TIMEOUT_SECONDS = 60;
/** Connections are replaced now and then (DNS changes, server-side limits). */
const MAX_LIFETIME_SECONDS = 30 * 60;
/** SQLite: how long to wait for another process's write lock (the operator's own tools). */
const SQLITE_BUSY_TIMEOUT_MS = 2_000;

/** The query did not answer within QUERY_TIMEOUT_MS. */
export class QueryTimeout extends Error {
  readonly code = "QUERY_TIMEOUT";
  constructor() {
    super(`the query did not answer within ${QUERY_TIMEOUT_MS / 1000} s`);
    this.name = "QueryTimeout";
  }
}

export type QueryFailure = "missing-table" | "bad-layout" | "unavailable";

/** Why a query failed, by the servers' own codes (PostgreSQL SQLSTATE, MySQL errno, SQLite text). */
export function classifyFailure(error: unknown): QueryFailure {
  const { errno, message } = (error ?? {}) as { errno?: unknown; message?: unknown };
  const text = typeof message === "string" ? message : "";
  if (errno === "42P01" || errno === 1146 || /no such table/i.test(text)) return "missing-table";
  if (errno === "42703" || errno === 1054 || /no such column/i.test(text)) return "bad-layout";
  return "unavailable";
}

/** A log-safe one-line description: the driver's code and message, never a password. */
export function describeFailure(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const { code, errno } = error as { code?: unknown; errno?: unknown };
  const first = error.message.split("\n")[0] ?? error.name;
  const codes = [code, errno].filter((c) => c !== undefined && c !== "").join(" ");
  return codes ? `${codes}: ${first}` : first;
}

export type QueryBuilder<Row> = (sql: SQL) => SQL.Query<Row[]>;

export class SqlDatabase {
  private readonly sql: SQL;
  private sqliteReady = false;

  constructor(
    readonly settings: ConnectionSettings,
    options: { createMissingFile?: boolean } = {},
  ) {
    this.sql =
      settings.engine === "sqlite"
        ? new SQL({
            adapter: "sqlite",
            filename: settings.filename,
            readonly: settings.readonly,
            // The file is the operator's, like the table: not created unless create_tables says so.
            create: options.createMissingFile === true && !settings.readonly,
          })
        : new SQL(serverOptions(settings));
  }

  get display(): string {
    return this.settings.display;
  }

  get engine(): ConnectionSettings["engine"] {
    return this.settings.engine;
  }

  /** Runs one query with the timeout; retries once when a pooled connection had been closed. */
  async query<Row>(build: QueryBuilder<Row>): Promise<Row[]> {
    if (this.settings.engine === "sqlite" && !this.sqliteReady) {
      await this.sql.unsafe(`PRAGMA busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
      this.sqliteReady = true;
    }
    try {
      return await this.withTimeout(build(this.sql));
    } catch (error) {
      if (!isClosedConnection(error)) throw error;
      return await this.withTimeout(build(this.sql));
    }
  }

  /** Statements without values (CREATE TABLE for create_tables), with the same timeout. */
  async execute(statement: string): Promise<void> {
    await this.withTimeout(this.sql.unsafe(statement));
  }

  async close(): Promise<void> {
    await this.sql.close({ timeout: 0 });
  }

  private async withTimeout<Row>(query: SQL.Query<Row[]>): Promise<Row[]> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        query.cancel();
        reject(new QueryTimeout());
      }, QUERY_TIMEOUT_MS);
    });
    try {
      return (await Promise.race([query, timeout])) as Row[];
    } finally {
      clearTimeout(timer);
    }
  }
}

function isClosedConnection(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && /_CONNECTION_CLOSED$/.test(code);
}

function serverOptions(settings: ServerConnection): Bun.SQL.Options {
  return {
    adapter: settings.engine,
    hostname: settings.hostname,
    port: settings.port,
    username: settings.username,
    password: settings.password,
    database: settings.database,
    ...(settings.socketPath ? { path: settings.socketPath } : {}),
    tls: tlsOption(settings),
    max: MAX_CONNECTIONS,
    connectionTimeout: settings.connectTimeoutSeconds ?? DEFAULT_CONNECT_TIMEOUT_SECONDS,
    idleTimeout: IDLE_TIMEOUT_SECONDS,
    maxLifetime: MAX_LIFETIME_SECONDS,
    // Shown in pg_stat_activity, so the operator can tell regauth's connections apart.
    ...(settings.engine === "postgres" ? { connection: { application_name: "regauth" } } : {}),
  };
}

/**
 * The drivers' TLS modes in Bun's terms: `require` encrypts without checking the certificate
 * (lib/pq require, go-sql-driver skip-verify); `verify-ca` checks the chain but not the name
 * (lib/pq verify-ca); `verify-full` checks both (lib/pq verify-full, go-sql-driver tls=true).
 */
function tlsOption(settings: ServerConnection): NonNullable<Bun.SQL.PostgresOrMySQLOptions["tls"]> {
  if (settings.tls === "disable") return false;
  if (settings.tls === "prefer") return "prefer";
  const files = {
    ...(settings.caFile ? { ca: Bun.file(settings.caFile) } : {}),
    ...(settings.clientCertFile ? { cert: Bun.file(settings.clientCertFile) } : {}),
    ...(settings.clientKeyFile ? { key: Bun.file(settings.clientKeyFile) } : {}),
  };
  if (settings.tls === "require") return { ...files, rejectUnauthorized: false };
  if (settings.tls === "verify-ca")
    return { ...files, rejectUnauthorized: true, checkServerIdentity: () => undefined };
  return { ...files, rejectUnauthorized: true };
}
