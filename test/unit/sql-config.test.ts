/**
 * xorm_auth / acl_xorm config (issue 13): docker_auth's conn_string forms for each Go driver,
 * malformed and hostile strings, cache_ttl, the unsupported back-ends' messages, registration
 * next to xorm_auth, and docker_auth's own example sections loading unchanged.
 */
import { describe, expect, test } from "bun:test";
import { ConfigError } from "../../src/errors.ts";
import { parseConnString, parseGoDuration } from "../../src/sql-backends/conn-string.ts";
import { aclReloadIntervalMs } from "../../src/sql-backends/config.ts";
import { parseAclRows } from "../../src/sql-backends/acl-xorm-authorizer.ts";
import { parseLabels } from "../../src/sql-backends/xorm-authenticator.ts";
import { loadTestConfig } from "../helpers.ts";

describe("conn_string", () => {
  const cases: { name: string; type: string; conn: string; expected: Record<string, unknown> }[] = [
    {
      name: "Go MySQL DSN with tcp",
      type: "mysql",
      conn: "user:pass@tcp(db.example.org:3307)/auth?charset=utf8mb4&parseTime=true",
      expected: {
        engine: "mysql",
        hostname: "db.example.org",
        port: 3307,
        username: "user",
        password: "pass",
        database: "auth",
        tls: "disable",
      },
    },
    {
      name: "Go MySQL DSN: password with @, / and :",
      type: "mysql",
      conn: "user:p@ss/w:rd@tcp(127.0.0.1)/auth",
      expected: {
        username: "user",
        password: "p@ss/w:rd",
        hostname: "127.0.0.1",
        port: 3306,
        database: "auth",
      },
    },
    {
      name: "Go MySQL DSN: no address means localhost:3306",
      type: "mysql",
      conn: "root@/auth",
      expected: { username: "root", password: "", hostname: "127.0.0.1", port: 3306, database: "auth" },
    },
    {
      name: "Go MySQL DSN: IPv6",
      type: "mysql",
      conn: "u:p@tcp([::1]:3306)/a",
      expected: { hostname: "::1", port: 3306 },
    },
    {
      name: "Go MySQL DSN: unix socket",
      type: "mysql",
      conn: "u:p@unix(/run/mysqld/mysqld.sock)/a",
      expected: { socketPath: "/run/mysqld/mysqld.sock", database: "a" },
    },
    {
      name: "Go MySQL DSN: tls=true verifies",
      type: "mysql",
      conn: "u:p@tcp(h)/a?tls=true",
      expected: { tls: "verify-full" },
    },
    {
      name: "Go MySQL DSN: tls=skip-verify",
      type: "mysql",
      conn: "u:p@tcp(h)/a?tls=skip-verify",
      expected: { tls: "require" },
    },
    {
      name: "Go MySQL DSN: tls=preferred",
      type: "mysql",
      conn: "u:p@tcp(h)/a?tls=preferred",
      expected: { tls: "prefer" },
    },
    {
      name: "Go MySQL DSN: timeout",
      type: "mysql",
      conn: "u:p@tcp(h)/a?timeout=2500ms",
      expected: { connectTimeoutSeconds: 3 },
    },
    {
      name: "PostgreSQL URL: lib/pq's default sslmode is require",
      type: "postgres",
      conn: "postgres://user:p%40ss@db:5433/auth",
      expected: {
        engine: "postgres",
        hostname: "db",
        port: 5433,
        username: "user",
        password: "p@ss",
        database: "auth",
        tls: "require",
      },
    },
    {
      name: "PostgreSQL URL: verify-full with a CA",
      type: "postgres",
      conn: "postgresql://u@db/auth?sslmode=verify-full&sslrootcert=/etc/ca.pem&connect_timeout=3",
      expected: { tls: "verify-full", caFile: "/etc/ca.pem", connectTimeoutSeconds: 3, port: 5432 },
    },
    {
      name: "PostgreSQL URL: require with sslrootcert verifies the chain (lib/pq)",
      type: "postgres",
      conn: "postgres://u@db/auth?sslrootcert=/etc/ca.pem",
      expected: { tls: "verify-ca" },
    },
    {
      name: "PostgreSQL key=value with quotes and escapes",
      type: "postgres",
      conn: "host=/var/run/postgresql user=docker password='it\\'s a secret' dbname=auth sslmode=disable",
      expected: {
        hostname: "/var/run/postgresql",
        username: "docker",
        password: "it's a secret",
        database: "auth",
        tls: "disable",
      },
    },
    {
      name: "PostgreSQL key=value: dbname defaults to the user",
      type: "postgres",
      conn: "host=db user=docker",
      expected: { database: "docker", port: 5432 },
    },
    {
      name: "SQLite path",
      type: "sqlite3",
      conn: "/var/lib/auth.db",
      expected: { engine: "sqlite", filename: "/var/lib/auth.db", readonly: false },
    },
    {
      name: "SQLite file: URI, read-only",
      type: "sqlite3",
      conn: "file:auth.db?mode=ro&_busy_timeout=500",
      expected: { filename: "auth.db", readonly: true },
    },
  ];
  test.each(cases)("$name", ({ type, conn, expected }) => {
    const parsed = parseConnString(type, conn);
    if ("problem" in parsed) throw new Error(parsed.problem);
    expect(parsed.settings).toMatchObject(expected);
    // The password never reaches what is logged.
    const password = (parsed.settings as { password?: string }).password;
    if (password) expect(parsed.settings.display).not.toContain(password);
  });

  const bad: { name: string; type: string; conn: string; problem: RegExp }[] = [
    { name: "unknown database type", type: "oracle", conn: "x", problem: /use mysql, postgres or sqlite3/ },
    { name: "MySQL DSN without /", type: "mysql", conn: "user:pass@tcp(h:3306)", problem: /not a MySQL DSN/ },
    {
      name: "MySQL DSN: custom TLS config",
      type: "mysql",
      conn: "u:p@tcp(h)/a?tls=custom",
      problem: /registered in Go code/,
    },
    { name: "MySQL DSN: unclosed address", type: "mysql", conn: "u:p@tcp(h/a", problem: /net\(addr\)/ },
    { name: "MySQL DSN: bad port", type: "mysql", conn: "u:p@tcp(h:99999)/a", problem: /host:port/ },
    {
      name: "MySQL DSN: bad timeout",
      type: "mysql",
      conn: "u:p@tcp(h)/a?timeout=soon",
      problem: /Go duration/,
    },
    {
      name: "PostgreSQL: unknown sslmode",
      type: "postgres",
      conn: "postgres://h/db?sslmode=maybe",
      problem: /sslmode=maybe/,
    },
    {
      name: "PostgreSQL: unknown key",
      type: "postgres",
      conn: "host=h sslmod=disable",
      problem: /unknown key "sslmod"/,
    },
    {
      name: "PostgreSQL: unterminated quote",
      type: "postgres",
      conn: "host=h password='abc",
      problem: /unterminated/,
    },
    { name: "PostgreSQL: key without =", type: "postgres", conn: "host h", problem: /key=value/ },
    {
      name: "PostgreSQL: bad %-escape",
      type: "postgres",
      conn: "postgres://u:%zz@h/db",
      problem: /malformed|not a PostgreSQL URL/,
    },
    { name: "SQLite in memory", type: "sqlite3", conn: ":memory:", problem: /file path/ },
    { name: "SQLite NUL", type: "sqlite3", conn: "a\0b", problem: /file path/ },
    { name: "SQLite bad mode", type: "sqlite3", conn: "file:a.db?mode=x", problem: /mode=x/ },
  ];
  test.each(bad)("refused: $name", ({ type, conn, problem }) => {
    const parsed = parseConnString(type, conn);
    expect("problem" in parsed && parsed.problem).toMatch(problem);
  });

  test("a problem never repeats the password", () => {
    const parsed = parseConnString("postgres", "host=h password=hunter2 sslmode=bogus");
    expect("problem" in parsed && parsed.problem).not.toContain("hunter2");
  });
});

describe("cache_ttl", () => {
  test.each([
    [undefined, 60_000],
    [0, 60_000],
    ["0", 60_000],
    ["0s", 60_000],
    ["1m", 60_000],
    ["1m30s", 90_000],
    ["2s", 2_000],
    ["1h", 3_600_000],
  ])("%p → %p ms", (value, expected) => {
    const problems: { path: string; message: string }[] = [];
    const section = {
      database_type: "sqlite3",
      conn_string: "x",
      ...(value === undefined ? {} : { cache_ttl: value }),
    };
    expect(aclReloadIntervalMs(section, "acl_xorm", problems)).toBe(expected);
    expect(problems).toEqual([]);
  });
  test.each([60, "soon", "500ms", "-1s", "1d"])("%p is refused", (value) => {
    const problems: { path: string; message: string }[] = [];
    expect(
      aclReloadIntervalMs(
        { database_type: "sqlite3", conn_string: "x", cache_ttl: value },
        "acl_xorm",
        problems,
      ),
    ).toBeNull();
    expect(problems[0]?.path).toBe("acl_xorm.cache_ttl");
  });
  test("Go durations", () => {
    expect(parseGoDuration("1.5s")).toBe(1500);
    expect(parseGoDuration("100ms")).toBe(100);
    expect(parseGoDuration("")).toBeNull();
    expect(parseGoDuration("5")).toBeNull();
  });
});

describe("table contents", () => {
  test.each([
    [null, {}],
    ["", {}],
    ["null", {}],
    ['{"group":["a","b"]}', { group: ["a", "b"] }],
    [{ group: ["a"] }, { group: ["a"] }],
    ['{"group":"a"}', null],
    ["[1]", null],
    ["{not json", null],
    ['{"group":[1]}', null],
  ])("labels %p → %p", (value, expected) => {
    expect(parseLabels(value)).toEqual(expected);
  });

  test("acl_entry rows: Go's field names, hand-written names, and bad rows by seq", () => {
    const good = parseAclRows([
      { seq: 1, acl_entry: '{"Match":{"Account":"admin"},"Actions":["*"],"Comment":"go"}' },
      { seq: "2", acl_entry: { match: { name: "x/*" }, actions: ["pull"] } },
    ]);
    expect(good.problems).toEqual([]);
    expect(good.rules).toEqual([
      { match: { account: "admin" }, actions: ["*"], comment: "go" },
      { match: { name: "x/*" }, actions: ["pull"] },
    ]);
    const bad = parseAclRows([
      { seq: 3, acl_entry: '{"match":{},"actions":"pull"}' },
      { seq: 4, acl_entry: '{"match":{"team":"x"},"actions":[]}' },
      { seq: 5, acl_entry: "[]" },
      { seq: null, acl_entry: null },
    ]);
    expect(bad.problems.map((p) => p.path)).toEqual([
      "seq 3 actions",
      "seq 4 match.team",
      "seq 5 acl_entry",
      "seq NULL acl_entry",
    ]);
  });
});

describe("config sections", () => {
  async function problemsOf(config: Record<string, unknown>) {
    try {
      await loadTestConfig(config);
      return [];
    } catch (error) {
      if (error instanceof ConfigError) return error.problems;
      throw error;
    }
  }

  // docker_auth's examples/reference.yml (latest stored version, 6cc6f71) has no xorm sections, so
  // these are written from the Go structs' yaml tags (authn/xorm_authn.go XormAuthnConfig,
  // authz/acl_xorm.go XormAuthzConfig) in each driver's documented DSN form.
  test.each([
    ["mysql", "user:password@tcp(127.0.0.1:3306)/docker_auth?charset=utf8&parseTime=True&loc=Local"],
    [
      "postgres",
      "host=localhost port=5432 user=docker_auth password=secret dbname=docker_auth sslmode=disable",
    ],
    ["postgres", "postgres://docker_auth:secret@localhost:5432/docker_auth?sslmode=verify-full"],
    ["sqlite3", "./docker_auth.db"],
  ])("docker_auth's %s sections load unchanged: %s", async (databaseType, connString) => {
    const text = `
token:
  issuer: "Acme auth server"
  expiration: 900
xorm_auth:
  database_type: "${databaseType}"
  conn_string: "${connString}"
acl_xorm:
  database_type: "${databaseType}"
  conn_string: "${connString}"
  cache_ttl: 1m
`;
    expect(await problemsOf(Bun.YAML.parse(text) as Record<string, unknown>)).toEqual([]);
  });

  test.each([
    ["mongo_auth", /xorm_auth, or use an ext_auth program/],
    ["acl_mongo", /acl_xorm, or use an ext_authz program/],
    ["casbin_authz", /ext_authz/],
    ["plugin_authn", /ext_auth program/],
    ["plugin_authz", /ext_authz program/],
  ])("%s names its alternative", async (key, message) => {
    const problems = await problemsOf({ [key]: { collection: "x" } });
    expect(problems.find((p) => p.path === key)?.message).toMatch(message);
  });

  test("every problem at once, with key paths", async () => {
    const problems = await problemsOf({
      xorm_auth: { database_type: "oracle", conn_string: "x" },
      acl_xorm: { database_type: "mysql", conn_string: "nope", cache_ttl: 5, table: "t" },
    });
    expect(problems.map((p) => p.path).sort()).toEqual(["acl_xorm.table", "xorm_auth.database_type"]);
    const semantic = await problemsOf({
      xorm_auth: { database_type: "oracle", conn_string: "x" },
      acl_xorm: { database_type: "mysql", conn_string: "nope", cache_ttl: 5 },
    });
    expect(semantic.map((p) => p.path).sort()).toEqual([
      "acl_xorm.cache_ttl",
      "acl_xorm.conn_string",
      "xorm_auth.database_type",
    ]);
  });

  test("registration next to xorm_auth needs allow_with_external_users", async () => {
    const xorm = { database_type: "sqlite3", conn_string: "/nonexistent/users.db" };
    const problems = await problemsOf({ registration: { mode: "open" }, xorm_auth: xorm });
    expect(problems.find((p) => p.path === "registration.mode")?.message).toContain("xorm_auth");
    expect(
      await problemsOf({ registration: { mode: "open", allow_with_external_users: true }, xorm_auth: xorm }),
    ).toEqual([]);
  });
});
