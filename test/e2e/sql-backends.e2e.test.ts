/**
 * The compiled binary with xorm_auth (issue 13) on each engine — PostgreSQL and MariaDB servers
 * started here (test/sql/servers.ts), and a SQLite file — in front of the real registry 2.8: a
 * user from the table pushes with skopeo to the namespace its `labels` name, not elsewhere; a
 * wrong password is refused; PostgreSQL stopped → 401 and an error in regauth's log, started
 * again → pushes work without restarting regauth. Every instance also reads acl_xorm from
 * MariaDB, so the binary runs both back-ends side by side.
 */
import { afterAll, describe, expect, it } from "bun:test";
import { join } from "node:path";
import { SQL } from "bun";
import { hashPassword, makeTempDir } from "../helpers.ts";
import { startMariadb, startPostgres, stopAllDatabaseServers } from "../sql/servers.ts";
import {
  fetchToken,
  makeOciImage,
  skopeoPull,
  skopeoPush,
  startRegauth,
  startRegistry,
  stopAllPeers,
} from "./harness.ts";

afterAll(stopAllPeers);
afterAll(stopAllDatabaseServers);

const USER_TABLE_SQL = {
  postgres:
    "CREATE TABLE xorm_user (id BIGSERIAL PRIMARY KEY NOT NULL, username VARCHAR(128) NOT NULL, password_hash VARCHAR(128) NOT NULL, labels JSON NULL)",
  mysql:
    "CREATE TABLE xorm_user (id BIGINT PRIMARY KEY AUTO_INCREMENT NOT NULL, username VARCHAR(128) NOT NULL, password_hash VARCHAR(128) NOT NULL, labels JSON NULL)",
  sqlite:
    "CREATE TABLE xorm_user (id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, username TEXT NOT NULL, password_hash TEXT NOT NULL, labels TEXT NULL)",
};

async function seed(sql: SQL, engine: keyof typeof USER_TABLE_SQL): Promise<void> {
  await sql.unsafe(USER_TABLE_SQL[engine]);
  const labels = JSON.stringify({ team: ["blue"] });
  await sql`INSERT INTO xorm_user (username, password_hash, labels) VALUES (${"alice"}, ${hashPassword("alice-pw")}, ${labels})`;
}

describe("xorm_auth users push through the real registry 2.8 with skopeo", async () => {
  const [postgres, mariadb] = await Promise.all([startPostgres(), startMariadb()]);
  const sqliteFile = join(makeTempDir("regauth-sqlite-e2e-"), "users.db");
  const sqlite = new SQL({ adapter: "sqlite", filename: sqliteFile, create: true });
  await Promise.all([seed(postgres.admin, "postgres"), seed(mariadb.admin, "mysql"), seed(sqlite, "sqlite")]);
  await sqlite.close();
  await mariadb.admin.unsafe("CREATE TABLE xorm_acl_entry (acl_entry TEXT NULL, seq BIGINT NULL)");
  await mariadb.admin`INSERT INTO xorm_acl_entry (seq, acl_entry) VALUES (${1}, ${JSON.stringify({ match: { account: "/.+/" }, actions: ["pull"] })})`;
  afterAll(async () => {
    await Promise.all([postgres.admin.close(), mariadb.admin.close()]);
    await Promise.all([postgres.stop(), mariadb.stop()]);
  });

  const engines = [
    { name: "PostgreSQL", type: "postgres", conn: postgres.connString },
    { name: "MariaDB", type: "mysql", conn: mariadb.connString },
    { name: "SQLite", type: "sqlite3", conn: sqliteFile },
  ];
  const setups = await Promise.all(
    engines.map(async (engine) => {
      const issuer = `xorm-${engine.type}`;
      const regauth = await startRegauth({
        // One process: a back-end's "unavailable" and "answers again" lines are each process's own
        // (issue 17), and the outage test below reads both from the log.
        configYaml: `
server:
  addr: 127.0.0.1:{{PORT}}
  workers: 1
token:
  issuer: ${issuer}
xorm_auth:
  database_type: ${engine.type}
  conn_string: ${JSON.stringify(engine.conn)}
acl:
  - match: {account: "/.+/", name: "\${labels:team}/*"}
    actions: ["*"]
    comment: the team namespace from the table's labels
acl_xorm:
  database_type: mysql
  conn_string: ${JSON.stringify(mariadb.connString)}
  cache_ttl: 10s
`,
      });
      const registry = await startRegistry({
        realm: `${regauth.url}/auth`,
        issuer,
        service: "registry",
        certificatePath: regauth.certificatePath,
      });
      return { ...engine, regauth, registry };
    }),
  );
  const image = makeOciImage("pushed by a SQL user\n");

  for (const setup of setups) {
    it(`${setup.name}: a table user pushes to its team namespace and pulls it back, but not elsewhere`, async () => {
      const push = await skopeoPush(image, `${setup.registry.host}/blue/app:v1`, "alice:alice-pw");
      expect(push.stderr).not.toContain("denied");
      expect(push.exitCode).toBe(0);
      expect((await skopeoPull(`${setup.registry.host}/blue/app:v1`, "alice:alice-pw")).exitCode).toBe(0);
      const elsewhere = await skopeoPush(image, `${setup.registry.host}/red/app:v1`, "alice:alice-pw");
      expect(elsewhere.exitCode).not.toBe(0);
      expect(elsewhere.stderr).toMatch(/denied|unauthorized/);
    });

    it(`${setup.name}: a wrong password is a 401`, async () => {
      const push = await skopeoPush(image, `${setup.registry.host}/blue/app:v2`, "alice:wrong");
      expect(push.exitCode).not.toBe(0);
      const token = await fetchToken(`${setup.regauth.url}/auth`, { service: "registry" }, "alice:wrong");
      expect(token.status).toBe(401);
    });
  }

  it("PostgreSQL stopped: 401 and an error in the log; started: pushes work, regauth not restarted", async () => {
    const { regauth, registry } = setups[0] as (typeof setups)[number];
    await postgres.stop();
    try {
      const refused = await fetchToken(`${regauth.url}/auth`, { service: "registry" }, "alice:alice-pw");
      expect(refused.status).toBe(401);
      expect(refused.text).not.toMatch(/postgres|ECONNREFUSED|Failed to connect/i);
      await regauth.stderr.waitFor(
        /level=error msg="xorm_auth database unavailable; login refused" status=503/,
      );
      expect(regauth.stderr.text).not.toContain("db-secret");
    } finally {
      await postgres.start();
    }
    const push = await skopeoPush(image, `${registry.host}/blue/app:v3`, "alice:alice-pw");
    expect(push.exitCode).toBe(0);
    await regauth.stderr.waitFor(/xorm_auth database answers again/);
  }, 30_000);
});
