/**
 * docker_auth's `conn_string`, in the forms its Go drivers accept, turned into plain connection
 * settings for Bun's SQL client (issue 13):
 *   - mysql: go-sql-driver/mysql's DSN `[user[:password]@][net[(addr)]]/dbname[?param=value&...]`
 *     (net tcp or unix; `tls=true|skip-verify|preferred|false`, `timeout=5s`);
 *   - postgres: lib/pq's URL `postgres[ql]://user:pass@host:port/db?sslmode=...` or its
 *     `key=value` string (`host=... user=... password='it''s' dbname=... sslmode=...`);
 *   - sqlite3: a file path, or a `file:` URI (go-sqlite3) whose `mode=ro` is honoured.
 * TLS is carried over as the drivers apply it. lib/pq's default `sslmode` is `require`
 * (encrypted, certificate not checked), not libpq's `prefer`, so that stays the default here:
 * a docker_auth config that worked without `sslmode` keeps TLS.
 * Problems are returned with messages that never repeat the password.
 */

export type Engine = "postgres" | "mysql" | "sqlite";

/** How a server connection uses TLS. `verify-full` also checks the host name. */
export type TlsMode = "disable" | "prefer" | "require" | "verify-ca" | "verify-full";

export interface ServerConnection {
  engine: "postgres" | "mysql";
  /** Host name or address; for PostgreSQL a path (starting with "/") is a socket directory. */
  hostname: string;
  port: number;
  /** MySQL `unix(/path)`: the socket file. */
  socketPath?: string;
  username: string;
  password: string;
  database: string;
  tls: TlsMode;
  /** PEM files: the CA to verify the server against, a client certificate and its key. */
  caFile?: string;
  clientCertFile?: string;
  clientKeyFile?: string;
  connectTimeoutSeconds?: number;
  /** For logs: the address and database, never the password. */
  display: string;
}

export interface SqliteConnection {
  engine: "sqlite";
  filename: string;
  readonly: boolean;
  display: string;
}

export type ConnectionSettings = ServerConnection | SqliteConnection;

export type ParseResult = { settings: ConnectionSettings } | { problem: string };

/** docker_auth's `database_type` values and the engine each selects. */
export const DATABASE_TYPES: Readonly<Record<string, Engine>> = {
  mysql: "mysql",
  postgres: "postgres",
  sqlite3: "sqlite",
};

export function parseConnString(databaseType: string, connString: string): ParseResult {
  const engine = DATABASE_TYPES[databaseType];
  if (engine === "mysql") return parseMysqlDsn(connString);
  if (engine === "postgres")
    return /^postgres(ql)?:\/\//i.test(connString)
      ? parsePostgresUrl(connString)
      : parsePostgresKeyValue(connString);
  if (engine === "sqlite") return parseSqlitePath(connString);
  return { problem: `unknown database_type ${JSON.stringify(databaseType)}; use mysql, postgres or sqlite3` };
}

// ---- MySQL: go-sql-driver/mysql ParseDSN ---------------------------------------------------

const MYSQL_TLS: Readonly<Record<string, TlsMode>> = {
  true: "verify-full",
  "skip-verify": "require",
  preferred: "prefer",
  false: "disable",
};

export function parseMysqlDsn(dsn: string): ParseResult {
  // As the Go driver: the last "/" ends the address part (a password may contain "/"), the last
  // "@" before it ends the user part (a password may contain "@"), the first ":" splits user and
  // password.
  const slash = dsn.lastIndexOf("/");
  if (slash < 0) return { problem: "not a MySQL DSN: expected user:password@tcp(host:port)/dbname" };
  const head = dsn.slice(0, slash);
  const tail = dsn.slice(slash + 1);
  const at = head.lastIndexOf("@");
  const userInfo = at >= 0 ? head.slice(0, at) : "";
  const address = at >= 0 ? head.slice(at + 1) : head;
  const colon = userInfo.indexOf(":");
  const username = colon >= 0 ? userInfo.slice(0, colon) : userInfo;
  const password = colon >= 0 ? userInfo.slice(colon + 1) : "";

  let net = "tcp";
  let addr = "";
  if (address !== "") {
    const open = address.indexOf("(");
    if (open >= 0) {
      if (!address.endsWith(")"))
        return { problem: "MySQL DSN: the address must be net(addr), e.g. tcp(db:3306)" };
      net = address.slice(0, open);
      addr = address.slice(open + 1, -1);
    } else net = address;
  }
  const question = tail.indexOf("?");
  const database = question >= 0 ? tail.slice(0, question) : tail;
  const params = new URLSearchParams(question >= 0 ? tail.slice(question + 1) : "");

  const tlsParam = params.get("tls") ?? "false";
  const tls = MYSQL_TLS[tlsParam.toLowerCase()];
  if (tls === undefined)
    return {
      problem: `MySQL DSN: tls=${tlsParam} names a TLS config registered in Go code; use tls=true, skip-verify, preferred or false`,
    };
  let connectTimeoutSeconds: number | undefined;
  const timeout = params.get("timeout");
  if (timeout !== null) {
    const ms = parseGoDuration(timeout);
    if (ms === null || ms <= 0)
      return { problem: `MySQL DSN: timeout=${timeout} is not a Go duration like 5s` };
    connectTimeoutSeconds = Math.max(1, Math.ceil(ms / 1000));
  }
  const common = { engine: "mysql" as const, username, password, database, tls };
  const timeouts = connectTimeoutSeconds === undefined ? {} : { connectTimeoutSeconds };
  if (net === "unix") {
    const socketPath = addr || "/tmp/mysql.sock";
    return {
      settings: {
        ...common,
        ...timeouts,
        hostname: "localhost",
        port: 3306,
        socketPath,
        display: `mysql unix(${socketPath})/${database}`,
      },
    };
  }
  if (net !== "tcp" && net !== "tcp6" && net !== "tcp4")
    return { problem: `MySQL DSN: unsupported network ${JSON.stringify(net)}; use tcp or unix` };
  const hostPort = splitHostPort(addr || "127.0.0.1:3306", 3306);
  if (!hostPort) return { problem: `MySQL DSN: cannot read host:port from ${JSON.stringify(addr)}` };
  return {
    settings: {
      ...common,
      ...timeouts,
      ...hostPort,
      display: `mysql ${formatHost(hostPort.hostname)}:${hostPort.port}/${database}`,
    },
  };
}

// ---- PostgreSQL: lib/pq ------------------------------------------------------------------

const PG_SSLMODES: Readonly<Record<string, TlsMode>> = {
  disable: "disable",
  allow: "prefer",
  prefer: "prefer",
  require: "require",
  "verify-ca": "verify-ca",
  "verify-full": "verify-full",
};

/** lib/pq keys that only tune the session or the Go side; accepted and ignored. */
const PG_IGNORED_KEYS = new Set([
  "application_name",
  "fallback_application_name",
  "extra_float_digits",
  "binary_parameters",
  "krbsrvname",
  "krbspn",
  "search_path",
  "timezone",
  "datestyle",
  "client_encoding",
]);

export function parsePostgresUrl(text: string): ParseResult {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { problem: "not a PostgreSQL URL: expected postgres://user:password@host:port/dbname" };
  }
  const values: Record<string, string> = {};
  if (url.hostname !== "") values.host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  if (url.port !== "") values.port = url.port;
  try {
    if (url.username !== "") values.user = decodeURIComponent(url.username);
    if (url.password !== "") values.password = decodeURIComponent(url.password);
    const path = decodeURIComponent(url.pathname.replace(/^\//, ""));
    if (path !== "") values.dbname = path;
  } catch {
    return { problem: "PostgreSQL URL: a %-escape in the user, password or database name is malformed" };
  }
  for (const [key, value] of url.searchParams) values[key] = value;
  return postgresSettings(values);
}

/** lib/pq's `key=value` form: values may be single-quoted, with `\'` and `\\` escapes inside. */
export function parsePostgresKeyValue(text: string): ParseResult {
  const values: Record<string, string> = {};
  let i = 0;
  const skipSpace = () => {
    while (i < text.length && /\s/.test(text[i] as string)) i++;
  };
  for (skipSpace(); i < text.length; skipSpace()) {
    const keyStart = i;
    while (i < text.length && text[i] !== "=" && !/\s/.test(text[i] as string)) i++;
    const key = text.slice(keyStart, i);
    skipSpace();
    if (text[i] !== "=" || key === "")
      return {
        problem: `PostgreSQL connection string: expected key=value near ${JSON.stringify(key.slice(0, 20))}`,
      };
    i++;
    skipSpace();
    let value = "";
    if (text[i] === "'") {
      i++;
      for (;;) {
        if (i >= text.length)
          return { problem: `PostgreSQL connection string: unterminated quote in ${key}` };
        const c = text[i] as string;
        if (c === "\\" && i + 1 < text.length) {
          value += text[i + 1];
          i += 2;
        } else if (c === "'") {
          i++;
          break;
        } else {
          value += c;
          i++;
        }
      }
    } else {
      while (i < text.length && !/\s/.test(text[i] as string)) {
        if (text[i] === "\\" && i + 1 < text.length) i++;
        value += text[i];
        i++;
      }
    }
    values[key] = value;
  }
  return postgresSettings(values);
}

function postgresSettings(values: Record<string, string>): ParseResult {
  for (const key of Object.keys(values)) {
    if (
      !PG_IGNORED_KEYS.has(key) &&
      ![
        "host",
        "hostaddr",
        "port",
        "user",
        "password",
        "dbname",
        "sslmode",
        "sslrootcert",
        "sslcert",
        "sslkey",
        "connect_timeout",
        "sslsni",
      ].includes(key)
    )
      return { problem: `PostgreSQL connection string: unknown key ${JSON.stringify(key)}` };
  }
  const sslmodeText = values.sslmode ?? "require";
  let tls = PG_SSLMODES[sslmodeText];
  if (tls === undefined)
    return {
      problem: `PostgreSQL connection string: sslmode=${sslmodeText} is not one of disable, require, verify-ca, verify-full`,
    };
  // lib/pq: with sslrootcert, sslmode=require verifies the chain as verify-ca does.
  if (tls === "require" && values.sslrootcert !== undefined) tls = "verify-ca";
  const port = Number(values.port ?? "5432");
  if (!Number.isInteger(port) || port < 1 || port > 65_535)
    return {
      problem: `PostgreSQL connection string: port ${JSON.stringify(values.port)} is not a port number`,
    };
  let connectTimeoutSeconds: number | undefined;
  if (values.connect_timeout !== undefined) {
    const seconds = Number(values.connect_timeout);
    if (!Number.isFinite(seconds) || seconds < 0)
      return {
        problem: `PostgreSQL connection string: connect_timeout=${values.connect_timeout} is not a number of seconds`,
      };
    if (seconds > 0) connectTimeoutSeconds = Math.ceil(seconds);
  }
  const hostname = values.host || values.hostaddr || "localhost";
  const username = values.user ?? "postgres";
  const database = values.dbname ?? username;
  const settings: ServerConnection = {
    engine: "postgres",
    hostname,
    port,
    username,
    password: values.password ?? "",
    database,
    tls,
    display: `postgres ${hostname.startsWith("/") ? hostname : formatHost(hostname)}:${port}/${database}`,
  };
  if (values.sslrootcert) settings.caFile = values.sslrootcert;
  if (values.sslcert) settings.clientCertFile = values.sslcert;
  if (values.sslkey) settings.clientKeyFile = values.sslkey;
  if (connectTimeoutSeconds !== undefined) settings.connectTimeoutSeconds = connectTimeoutSeconds;
  return { settings };
}

// ---- SQLite: go-sqlite3 ----------------------------------------------------------------

export function parseSqlitePath(text: string): ParseResult {
  let path = text;
  let query = "";
  if (text.startsWith("file:")) {
    const question = text.indexOf("?");
    path = text.slice("file:".length, question >= 0 ? question : undefined);
    query = question >= 0 ? text.slice(question + 1) : "";
    if (path.startsWith("//")) path = path.slice(2);
  }
  if (path === "" || path === ":memory:" || path.includes("\0"))
    return {
      problem: "sqlite3 conn_string must be a database file path (an in-memory database would be empty)",
    };
  const mode = new URLSearchParams(query).get("mode");
  if (mode !== null && !["ro", "rw", "rwc"].includes(mode))
    return { problem: `sqlite3 conn_string: mode=${mode} is not ro, rw or rwc` };
  return {
    settings: { engine: "sqlite", filename: path, readonly: mode === "ro", display: `sqlite3 ${path}` },
  };
}

// ---- helpers ---------------------------------------------------------------------------

function splitHostPort(text: string, defaultPort: number): { hostname: string; port: number } | null {
  const match = /^(?:\[([0-9a-fA-F:.%\w]+)\]|([^:[\]]*))(?::(\d{1,5}))?$/.exec(text);
  if (!match) return null;
  const port = match[3] === undefined ? defaultPort : Number(match[3]);
  if (port < 1 || port > 65_535) return null;
  return { hostname: match[1] ?? (match[2] || "127.0.0.1"), port };
}

function formatHost(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

const GO_DURATION_UNITS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Go's time.ParseDuration ("1m30s", "500ms", "0"), in milliseconds; null when malformed. */
export function parseGoDuration(text: string): number | null {
  if (text === "0") return 0;
  const match = /^([0-9]*\.?[0-9]+(?:ns|us|µs|ms|s|m|h))+$/.test(text);
  if (!match) return null;
  let total = 0;
  for (const part of text.matchAll(/([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)/g))
    total += Number(part[1]) * (GO_DURATION_UNITS[part[2] as string] as number);
  return total;
}
