/**
 * xorm_auth and acl_xorm (issue 13) against real servers started here (test/sql/servers.ts):
 * PostgreSQL and MariaDB, each once for the file, and SQLite files. Requests go through the real
 * HTTP app in process (`app.handle`). Covered per engine: login, labels driving an ACL rule, a
 * wrong password, the newest row winning, exact (never collation- or LIKE-) matching of hostile
 * names; then a missing table, create_tables, an outage and recovery, and the ACL table's
 * reloads, ordering and broken rows.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { SQL } from "bun";
import { log } from "../../src/log.ts";
import type { AclXormAuthorizer } from "../../src/sql-backends/acl-xorm-authorizer.ts";
import { PasswordVerifier } from "../../src/authn/password-verifier.ts";
import { type ConnectionSettings, parseConnString } from "../../src/sql-backends/conn-string.ts";
import { MAX_CONNECTIONS } from "../../src/sql-backends/sql-database.ts";
import { type XormAuthenticator, xormAuthenticator } from "../../src/sql-backends/xorm-authenticator.ts";
import { basic, hashPassword, makeTempDir, req, testApp, verifyToken } from "../helpers.ts";
import { makeTestPki, type TestPki } from "../ldap/slapd.ts";
import {
  DB_NAME,
  DB_PASSWORD,
  DB_USER,
  startMariadb,
  startPostgres,
  stopAllDatabaseServers,
  type TestDatabaseServer,
} from "./servers.ts";

/**
 * Each failed login waits out the failure-latency floor, and the CI machine is shared: tests that
 * make a dozen failed logins in a row get more than bun's 5 s default.
 */
const MANY_LOGINS_TIMEOUT_MS = 30_000;

let postgres: TestDatabaseServer;
let mariadb: TestDatabaseServer;
const sqliteDir = makeTempDir("regauth-sqlite-");
/** The servers' certificate names another host: verify-ca passes, verify-full must not. */
let pki: TestPki;

beforeAll(async () => {
  pki = makeTestPki("DNS:db.example.test");
  const tls = { certPath: pki.certPath, keyPath: pki.keyPath };
  [postgres, mariadb] = await Promise.all([startPostgres({ tls }), startMariadb({ tls })]);
}, 60_000);
afterAll(async () => {
  await Promise.all([postgres?.admin.close(), mariadb?.admin.close()]);
  await Promise.all([postgres?.stop(), mariadb?.stop()]);
  await stopAllDatabaseServers();
});

function postgresAdminOptions() {
  return {
    adapter: "postgres" as const,
    hostname: "127.0.0.1",
    port: postgres.port,
    username: DB_USER,
    password: DB_PASSWORD,
  };
}

interface EngineCase {
  name: string;
  databaseType: "postgres" | "mysql" | "sqlite3";
  connString: () => string;
  admin: () => SQL;
}

let sqliteAdmin: SQL | null = null;
const sqliteFile = join(sqliteDir, "users.db");
const ENGINES: EngineCase[] = [
  {
    name: "PostgreSQL",
    databaseType: "postgres",
    connString: () => postgres.connString,
    admin: () => postgres.admin,
  },
  {
    name: "MariaDB",
    databaseType: "mysql",
    connString: () => mariadb.connString,
    admin: () => mariadb.admin,
  },
  {
    name: "SQLite",
    databaseType: "sqlite3",
    connString: () => sqliteFile,
    admin: () => {
      sqliteAdmin ??= new SQL({ adapter: "sqlite", filename: sqliteFile, create: true });
      return sqliteAdmin;
    },
  },
];

const ACL = [
  {
    match: { account: "/.+/", name: "${labels:team}/*" },
    actions: ["pull", "push"],
    comment: "team namespaces",
  },
  { match: { account: "/.+/" }, actions: ["pull"] },
];

async function captureLogs<T>(work: () => Promise<T>): Promise<{ result: T; lines: string[] }> {
  const lines: string[] = [];
  const restore = log.capture(lines);
  try {
    return { result: await work(), lines };
  } finally {
    restore();
  }
}

type Made = Awaited<ReturnType<typeof testApp>>;

async function login(
  made: Made,
  username: string,
  password: string,
  scope = "repository:blue/app:push,pull",
) {
  const response = await made.app.handle(
    req(`/auth?service=registry&scope=${encodeURIComponent(scope)}`, {
      headers: { authorization: basic(username, password) },
    }),
  );
  const body = (await response.json()) as { token?: string; errors?: { message: string }[] };
  if (response.status !== 200 || !body.token)
    return { status: response.status, sub: null, actions: null, message: body.errors?.[0]?.message };
  const { claims } = await verifyToken(body.token, made.loaded, "registry");
  return {
    status: response.status,
    sub: claims.sub,
    actions: claims.access[0]?.actions ?? [],
    message: undefined,
  };
}

async function insertUser(sql: SQL, username: string, password: string, labels: unknown = null) {
  const labelText = labels === null ? null : JSON.stringify(labels);
  await sql`INSERT INTO xorm_user (username, password_hash, labels) VALUES (${username}, ${hashPassword(password)}, ${labelText})`;
}

const HOSTILE_NAMES = [
  "' OR '1'='1",
  "alice'--",
  'alice"; DROP TABLE xorm_user; --',
  "%",
  "ali%",
  "_lice",
  "al_ce",
  "a\\",
  "x".repeat(129),
  "é".repeat(200),
];

describe.each(ENGINES)("xorm_auth on $name", (engine) => {
  let made: Made;

  beforeAll(async () => {
    // The first app creates the table (create_tables), as docker_auth's Sync2 would have.
    made = await testApp({
      acl: ACL,
      xorm_auth: {
        database_type: engine.databaseType,
        conn_string: engine.connString(),
        create_tables: true,
      },
    });
    await (made.issuer.authenticators.find((a) => a.name === "xorm_auth") as XormAuthenticator).ready;
    const sql = engine.admin();
    await insertUser(sql, "alice", "alice-pw", { team: ["blue"] });
    await insertUser(sql, "bob", "bob-pw", { team: ["red"] });
    await insertUser(sql, "carol", "old-pw");
    await insertUser(sql, "carol", "new-pw"); // newer row: wins
    await insertUser(sql, "a%b", "percent-pw");
    await insertUser(sql, "a_b", "underscore-pw");
    await insertUser(sql, "o'brien", "quote-pw");
  }, MANY_LOGINS_TIMEOUT_MS);

  test("a user logs in; labels from the table drive the ACL", async () => {
    expect(await login(made, "alice", "alice-pw")).toMatchObject({
      status: 200,
      sub: "alice",
      actions: ["pull", "push"],
    });
    expect(await login(made, "bob", "bob-pw")).toMatchObject({ status: 200, sub: "bob", actions: ["pull"] });
    expect(await login(made, "bob", "bob-pw", "repository:red/app:push,pull")).toMatchObject({
      actions: ["pull", "push"],
    });
  });

  test(
    "a wrong password is a 401; so is an unknown name; an empty password is not ours",
    async () => {
      expect((await login(made, "alice", "wrong")).status).toBe(401);
      expect((await login(made, "nobody", "alice-pw")).status).toBe(401);
      expect((await login(made, "alice", "")).status).toBe(401);
    },
    MANY_LOGINS_TIMEOUT_MS,
  );

  test(
    "the newest row for a name wins",
    async () => {
      expect((await login(made, "carol", "new-pw")).status).toBe(200);
      expect((await login(made, "carol", "old-pw")).status).toBe(401);
    },
    MANY_LOGINS_TIMEOUT_MS,
  );

  test(
    "names are matched exactly: no collation folding, no LIKE patterns",
    async () => {
      // MySQL's default collation says 'ALICE' = 'alice' and 'alice ' = 'alice'.
      for (const variant of ["ALICE", "Alice", "alice ", " alice"])
        expect((await login(made, variant, "alice-pw")).status).toBe(401);
      expect((await login(made, "a%b", "percent-pw")).status).toBe(200);
      expect((await login(made, "axb", "percent-pw")).status).toBe(401);
      expect((await login(made, "a_b", "underscore-pw")).status).toBe(200);
      expect((await login(made, "axb", "underscore-pw")).status).toBe(401);
      expect((await login(made, "o'brien", "quote-pw")).sub).toBe("o'brien");
    },
    MANY_LOGINS_TIMEOUT_MS,
  );

  test(
    "hostile names are refused, never run as SQL, and logged as no outage",
    async () => {
      const { result, lines } = await captureLogs(async () => {
        const statuses: number[] = [];
        for (const name of [...HOSTILE_NAMES, "ali\0ce", "alice\0"])
          statuses.push((await login(made, name, "alice-pw")).status);
        return statuses;
      });
      for (const status of result) expect([400, 401]).toContain(status);
      expect(lines.filter((line) => line.includes("level=error"))).toEqual([]);
      const [{ count }] = (await engine.admin()`SELECT COUNT(*) AS count FROM xorm_user`) as [
        { count: unknown },
      ];
      expect(Number(count)).toBe(7); // the table is intact
    },
    MANY_LOGINS_TIMEOUT_MS,
  );
});

describe("xorm_auth: tables are not ours", () => {
  test("a missing table: 401, and the log names it and shows docker_auth's CREATE TABLE", async () => {
    const file = join(makeTempDir("regauth-sqlite-empty-"), "empty.db");
    new SQL({ adapter: "sqlite", filename: file, create: true }).close();
    const { result, lines } = await captureLogs(async () => {
      const made = await testApp({ xorm_auth: { database_type: "sqlite3", conn_string: file } });
      await (made.issuer.authenticators.find((a) => a.name === "xorm_auth") as XormAuthenticator).ready;
      return login(made, "alice", "alice-pw");
    });
    expect(result.status).toBe(401);
    const text = lines.join("\n");
    expect(text).toContain("table xorm_user does not exist");
    expect(text).toContain("CREATE TABLE IF NOT EXISTS `xorm_user`");
    // Nothing was created behind the operator's back.
    const check = new SQL({ adapter: "sqlite", filename: file });
    expect(await check`SELECT name FROM sqlite_master WHERE type = 'table'`).toEqual([]);
    await check.close();
  });

  test("a missing PostgreSQL table is reported with PostgreSQL's CREATE TABLE", async () => {
    await postgres.admin.unsafe("CREATE DATABASE empty_db");
    const conn = postgres.connString.replace(`/${DB_NAME}?`, "/empty_db?");
    const { lines } = await captureLogs(async () => {
      const made = await testApp({ xorm_auth: { database_type: "postgres", conn_string: conn } });
      await (made.issuer.authenticators.find((a) => a.name === "xorm_auth") as XormAuthenticator).ready;
      expect((await login(made, "alice", "alice-pw")).status).toBe(401);
    });
    const text = lines.join("\n");
    expect(text).toContain("table xorm_user does not exist");
    expect(text).toContain("BIGSERIAL PRIMARY KEY NOT NULL");
  });
});

describe("xorm_auth: create_tables", () => {
  test("creates the table when the database comes up after regauth, and only then", async () => {
    const conn = postgres.connString.replace(`/${DB_NAME}?`, "/late_db?");
    const { lines } = await captureLogs(async () => {
      const made = await testApp({
        xorm_auth: { database_type: "postgres", conn_string: conn, create_tables: true },
      });
      await (made.issuer.authenticators.find((a) => a.name === "xorm_auth") as XormAuthenticator).ready;
      expect((await login(made, "alice", "alice-pw")).status).toBe(401); // the database does not exist yet
      await postgres.admin.unsafe("CREATE DATABASE late_db");
      expect((await login(made, "alice", "alice-pw")).status).toBe(401); // no such user, but the table is made
    });
    expect(lines.some((line) => line.includes("cannot use the database"))).toBe(true);
    const late = new SQL({ ...postgresAdminOptions(), database: "late_db" });
    expect(await late`SELECT COUNT(*)::int AS n FROM xorm_user`).toEqual([{ n: 0 }]);
    await late.close();
  });
});

describe("xorm_auth: the pool", () => {
  test(`100 logins at once use at most ${MAX_CONNECTIONS} connections`, async () => {
    await postgres.admin.unsafe("CREATE DATABASE pool_db");
    const conn = postgres.connString.replace(`/${DB_NAME}?`, "/pool_db?");
    const authenticator = xormAuthenticator(
      {
        connection: (parseConnString("postgres", conn) as { settings: ConnectionSettings }).settings,
        createTables: true,
      },
      new PasswordVerifier(),
    );
    await authenticator.ready;
    let peak = 0;
    let running = true;
    const sampler = (async () => {
      while (running) {
        const [{ n }] =
          (await postgres.admin`SELECT COUNT(*)::int AS n FROM pg_stat_activity WHERE datname = ${"pool_db"} AND application_name = ${"regauth"}`) as [
            { n: number },
          ];
        peak = Math.max(peak, n);
        await Bun.sleep(5);
      }
    })();
    const outcomes = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        authenticator.authenticate({ username: `user${i}`, password: "pw" }, { ip: null }),
      ),
    );
    running = false;
    await sampler;
    await authenticator.close();
    expect(outcomes.every((o) => o.kind === "no-match")).toBe(true);
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(MAX_CONNECTIONS);
  });
});

describe("xorm_auth: TLS as the conn_string asks", () => {
  const pgCases = [
    { sslmode: "require", ca: false, status: 200, why: "encrypted, certificate not checked (lib/pq)" },
    { sslmode: "", ca: false, status: 200, why: "lib/pq's default is require" },
    { sslmode: "verify-ca", ca: true, status: 200, why: "chain checked, name not" },
    { sslmode: "verify-full", ca: true, status: 401, why: "the certificate names another host" },
    { sslmode: "verify-full", ca: false, status: 401, why: "the test CA is not trusted" },
    { sslmode: "verify-ca", ca: false, status: 401, why: "the test CA is not trusted" },
  ];
  test.each(pgCases)(
    "PostgreSQL sslmode=$sslmode, CA given: $ca → $status ($why)",
    async ({ sslmode, ca, status }) => {
      const params = new URLSearchParams();
      if (sslmode) params.set("sslmode", sslmode);
      if (ca) params.set("sslrootcert", pki.caPath);
      const conn = `${postgres.connString.split("?")[0]}?${params}`;
      const mark = postgres.log().length;
      const made = await testApp({ acl: ACL, xorm_auth: { database_type: "postgres", conn_string: conn } });
      const { result, lines } = await captureLogs(() => login(made, "alice", "alice-pw"));
      expect(result.status).toBe(status);
      if (status === 200) expect(postgres.log().slice(mark)).toMatch(/connection authorized: .*SSL enabled/);
      else
        expect(lines.join("\n")).toMatch(
          /xorm_auth database unavailable.*(certificate|CERT|TLS|SSL|hostname)/i,
        );
    },
  );

  test.each([
    { tls: "skip-verify", status: 200 },
    { tls: "true", status: 401 }, // verified against the system CAs, which do not include the test CA
    { tls: "false", status: 200 },
  ])("MariaDB tls=$tls → $status", async ({ tls, status }) => {
    const conn = `${mariadb.connString.split("?")[0]}?tls=${tls}`;
    const made = await testApp({ acl: ACL, xorm_auth: { database_type: "mysql", conn_string: conn } });
    const { result, lines } = await captureLogs(() => login(made, "alice", "alice-pw"));
    expect(result.status).toBe(status);
    if (status !== 200)
      expect(lines.join("\n")).toMatch(/xorm_auth database unavailable.*(certificate|CERT|TLS|SSL)/i);
  });

  test("a server that accepts connections but never answers: 401 within the connect timeout", async () => {
    const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const conn = `postgres://u:p@127.0.0.1:${silent.port}/db?sslmode=disable&connect_timeout=1`;
      const made = await testApp({ xorm_auth: { database_type: "postgres", conn_string: conn } });
      const started = performance.now();
      const { result, lines } = await captureLogs(() => login(made, "alice", "alice-pw"));
      expect(result.status).toBe(401);
      expect(performance.now() - started).toBeLessThan(4_000);
      expect(lines.some((line) => line.includes("xorm_auth database unavailable"))).toBe(true);
    } finally {
      silent.stop(true);
    }
  });
});

describe("xorm_auth: the database goes away and comes back", () => {
  test("PostgreSQL stopped → 401 and an error in the log; started → logins work, no restart", async () => {
    const made = await testApp({
      acl: ACL,
      xorm_auth: { database_type: "postgres", conn_string: postgres.connString },
    });
    expect((await login(made, "alice", "alice-pw")).status).toBe(200);
    await postgres.stop();
    try {
      const { result, lines } = await captureLogs(() => login(made, "alice", "alice-pw"));
      expect(result.status).toBe(401);
      expect(result.message).toBe("authentication failed"); // no driver text for the client
      expect(
        lines.some((line) => line.includes("level=error") && line.includes("xorm_auth database unavailable")),
      ).toBe(true);
    } finally {
      await postgres.start();
    }
    const { result, lines } = await captureLogs(() => login(made, "alice", "alice-pw"));
    expect(result.status).toBe(200);
    expect(lines.some((line) => line.includes("answers again"))).toBe(true);
  }, 30_000);

  test("MariaDB stopped → 401; started → logins work", async () => {
    const made = await testApp({ xorm_auth: { database_type: "mysql", conn_string: mariadb.connString } });
    expect((await login(made, "bob", "bob-pw")).status).toBe(200);
    await mariadb.stop();
    try {
      expect((await captureLogs(() => login(made, "bob", "bob-pw"))).result.status).toBe(401);
    } finally {
      await mariadb.start();
    }
    expect((await login(made, "bob", "bob-pw")).status).toBe(200);
  }, 30_000);
});

describe.each([
  { name: "PostgreSQL", databaseType: "postgres", server: () => postgres },
  { name: "MariaDB", databaseType: "mysql", server: () => mariadb },
])("acl_xorm on $name", ({ databaseType, server }) => {
  let made: Made;
  let authorizer: AclXormAuthorizer;

  async function waitFor(condition: () => Promise<boolean>, what: string): Promise<void> {
    const deadline = Date.now() + 8_000;
    while (!(await condition())) {
      if (Date.now() > deadline) throw new Error(`not within 8 s: ${what}`);
      await Bun.sleep(100);
    }
  }

  beforeAll(async () => {
    const sql = server().admin;
    await sql.unsafe("DROP TABLE IF EXISTS xorm_acl_entry");
    await sql.unsafe("CREATE TABLE xorm_acl_entry (acl_entry TEXT NULL, seq BIGINT NULL)");
    // Go's encoding/json spelling (no json tags on ACLEntry) and a hand-written one.
    await sql`INSERT INTO xorm_acl_entry (seq, acl_entry) VALUES (${20}, ${JSON.stringify({ Match: { account: "/.+/" }, Actions: ["pull"], Comment: "everyone pulls" })})`;
    await sql`INSERT INTO xorm_acl_entry (seq, acl_entry) VALUES (${10}, ${JSON.stringify({ match: { labels: { team: "blue" }, name: "blue/*" }, actions: ["*"] })})`;
    made = await testApp({
      users: {
        alice: { password: hashPassword("alice-pw"), labels: { team: ["blue"] } },
        dave: { password: hashPassword("dave-pw") },
      },
      acl: [{ match: { account: "root" }, actions: ["*"] }],
      acl_xorm: { database_type: databaseType, conn_string: server().connString, cache_ttl: "1s" },
    });
    authorizer = made.issuer.authorizers.find((a) => a.name === "acl_xorm") as AclXormAuthorizer;
    await authorizer.reload();
  }, MANY_LOGINS_TIMEOUT_MS);
  afterAll(() => authorizer?.close());

  test("entries are read in seq order and decide after the config acl", async () => {
    expect(await login(made, "alice", "alice-pw")).toMatchObject({ status: 200, actions: ["pull", "push"] });
    expect(await login(made, "dave", "dave-pw")).toMatchObject({ status: 200, actions: ["pull"] });
  });

  test(
    "a row added with a seq before another takes effect after cache_ttl",
    async () => {
      await server()
        .admin`INSERT INTO xorm_acl_entry (seq, acl_entry) VALUES (${5}, ${JSON.stringify({ match: { account: "dave" }, actions: [] })})`;
      await waitFor(async () => (await login(made, "dave", "dave-pw")).actions?.length === 0, "dave denied");
      expect((await login(made, "alice", "alice-pw")).actions).toEqual(["pull", "push"]);
    },
    MANY_LOGINS_TIMEOUT_MS,
  );

  test(
    "a broken row keeps the previous set serving, and the log names its seq and field",
    async () => {
      const { lines } = await captureLogs(async () => {
        await server()
          .admin`INSERT INTO xorm_acl_entry (seq, acl_entry) VALUES (${7}, ${JSON.stringify({ match: { ip: "not-an-ip" }, actions: ["*"] })})`;
        await server().admin`INSERT INTO xorm_acl_entry (seq, acl_entry) VALUES (${8}, ${"{not json"})`;
        await server()
          .admin`INSERT INTO xorm_acl_entry (seq, acl_entry) VALUES (${9}, ${JSON.stringify({ match: { team: "x" }, actions: ["*"] })})`;
        await Bun.sleep(2_500); // two reload periods
      });
      const text = lines.join("\n");
      expect(text).toContain("acl_xorm keeps serving the previous ACL");
      expect(text).toContain("seq 8 acl_entry: not JSON");
      expect(text).toContain("seq 9 match.team: unknown key");
      expect(authorizer.entryCount).toBe(3);
      expect((await login(made, "dave", "dave-pw")).actions).toEqual([]);
      // Fixed: the next reload serves the new set, with the bad ip reported by the ACL compiler.
      await server().admin`DELETE FROM xorm_acl_entry WHERE seq IN (${8}, ${9})`;
      const second = await captureLogs(async () => {
        await Bun.sleep(1_500);
      });
      expect(second.lines.join("\n")).toContain("seq 7 match.ip: not an IP address");
      await server().admin`DELETE FROM xorm_acl_entry WHERE seq = ${7}`;
      await waitFor(async () => authorizer.entryCount === 3, "clean set");
    },
    MANY_LOGINS_TIMEOUT_MS,
  );
});

describe("acl_xorm: cache_ttl and outages", () => {
  test("a missing or zero cache_ttl loads (docker_auth panics) and the table is read", async () => {
    const file = join(makeTempDir("regauth-acl-"), "acl.db");
    for (const cacheTtl of [undefined, 0, "0s"]) {
      const made = await testApp({
        users: { alice: { password: hashPassword("alice-pw") } },
        acl_xorm: {
          database_type: "sqlite3",
          conn_string: file,
          create_tables: true,
          ...(cacheTtl === undefined ? {} : { cache_ttl: cacheTtl }),
        },
      });
      const authorizer = made.issuer.authorizers.find((a) => a.name === "acl_xorm") as AclXormAuthorizer;
      await authorizer.reload();
      expect(authorizer.entryCount).toBe(0);
      expect((await login(made, "alice", "alice-pw")).actions).toEqual([]);
      await authorizer.close();
    }
  });

  test("no ACL ever read: 503 with a message of ours, not the driver's", async () => {
    const file = join(makeTempDir("regauth-acl-missing-"), "none.db");
    const { result } = await captureLogs(async () => {
      const made = await testApp({
        users: { alice: { password: hashPassword("alice-pw") } },
        acl_xorm: { database_type: "sqlite3", conn_string: file },
      });
      const response = await made.app.handle(
        req("/auth?service=registry&scope=repository:x/y:pull", {
          headers: { authorization: basic("alice", "alice-pw") },
        }),
      );
      const authorizer = made.issuer.authorizers.find((a) => a.name === "acl_xorm") as AclXormAuthorizer;
      await authorizer.close();
      return { status: response.status, body: await response.text() };
    });
    expect(result.status).toBe(503);
    expect(result.body).toContain("the ACL table could not be read");
    expect(result.body).not.toMatch(/sqlite|SQLITE/);
  });
});
