import { Database } from "bun:sqlite";
import { describe, expect, it } from "bun:test";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { DatabaseError, databasePath, openDatabase } from "../../src/db/database.ts";
import { LATEST_SCHEMA_VERSION, MIGRATIONS, migrate, schemaVersion } from "../../src/db/migrate.ts";
import { makeTempDir } from "../helpers.ts";

const MIGRATIONS_DIR = join(import.meta.dir, "../../migrations");

/** Rows written at each schema version, to check that an upgrade keeps them. Add one per migration. */
const FIXTURES: Record<number, (db: Database) => void> = {
  1: (db) => {
    db.run(
      "INSERT INTO users (name, password_hash, created_at_unix) VALUES ('alice', '$2b$04$x', 1700000000)",
    );
    db.run(
      "INSERT INTO permissions (user_id, pattern, level, created_at_unix) VALUES (1, 'team/*', 'write', 1700000000)",
    );
  },
  2: (db) => {
    db.run("INSERT INTO retired_names (name, retired_at_unix) VALUES ('dave', 1700000001)");
  },
  4: (db) => {
    db.run(
      `INSERT INTO access_tokens (user_id, name, scopes, repository_patterns, secret_hmac, created_at_unix)
       VALUES (1, 'ci', '["pull"]', '["*"]', x'00', 1700000002)`,
    );
  },
  5: (db) => {
    db.run(
      `INSERT INTO audit_events (at_unix_ms, kind, actor, outcome, details) VALUES (1700000003000, 'login', 'alice', 'ok', '{}')`,
    );
  },
};

function tables(db: Database): string[] {
  return db
    .query<{ name: string }, []>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    .all()
    .map((r) => r.name);
}

describe("database file", () => {
  it("is created with mode 0600, and so are its WAL files (it holds password hashes)", () => {
    const path = databasePath(makeTempDir());
    const db = openDatabase(path);
    db.run("INSERT INTO users (name, password_hash, created_at_unix) VALUES ('bob', '$2b$04$x', 1)");
    for (const file of [path, `${path}-wal`, `${path}-shm`]) expect(statSync(file).mode & 0o777).toBe(0o600);
    db.close();
  });
});

describe("migrations", () => {
  it("are listed in src/db/migrate.ts exactly as the files in migrations/ (so the binary embeds all)", () => {
    const files = readdirSync(MIGRATIONS_DIR)
      .filter((f) => f.endsWith(".sql"))
      .sort();
    expect(MIGRATIONS.map((m) => m.file)).toEqual(files);
    MIGRATIONS.forEach((m, i) => {
      expect(m.version).toBe(i + 1);
      expect(m.file).toMatch(/^\d{4}_[a-z]+(_[a-z]+)+\.sql$/);
      expect(m.file.startsWith(String(m.version).padStart(4, "0"))).toBe(true);
    });
  });

  it("create a fresh database at the latest version, STRICT tables, WAL and foreign keys on", () => {
    const db = openDatabase(databasePath(makeTempDir()));
    expect(schemaVersion(db)).toBe(LATEST_SCHEMA_VERSION);
    expect(tables(db)).toEqual([
      "access_tokens",
      "audit_events",
      "group_members",
      "groups",
      "identity_links",
      "image_tags",
      "permissions",
      "registry_events_seen",
      "repositories",
      "retired_names",
      "users",
      "web_sessions",
      "webhook_deliveries",
      "webhooks",
    ]);
    for (const table of tables(db)) {
      const sql = db
        .query<{ sql: string }, [string]>("SELECT sql FROM sqlite_master WHERE name = ?")
        .get(table);
      expect(sql?.sql).toMatch(/\)\s*STRICT$/);
    }
    expect(db.query("PRAGMA journal_mode").get()).toEqual({ journal_mode: "wal" });
    expect(db.query("PRAGMA foreign_keys").get()).toEqual({ foreign_keys: 1 });
    expect(db.query("PRAGMA busy_timeout").get()).toEqual({ timeout: 5000 });
  });

  it("re-open an up-to-date database without changing it", () => {
    const path = databasePath(makeTempDir());
    const first = openDatabase(path);
    FIXTURES[1]?.(first);
    first.close();
    const again = openDatabase(path);
    expect(schemaVersion(again)).toBe(LATEST_SCHEMA_VERSION);
    expect(again.query("SELECT name FROM users").all()).toEqual([{ name: "alice" }]);
  });

  for (let from = 0; from < LATEST_SCHEMA_VERSION; from++) {
    it(`upgrade a database from schema v${from} to v${LATEST_SCHEMA_VERSION}, keeping its rows`, () => {
      const path = databasePath(makeTempDir());
      const old = new Database(path, { create: true, strict: true });
      migrate(old, from);
      expect(schemaVersion(old)).toBe(from);
      for (let v = 1; v <= from; v++) FIXTURES[v]?.(old);
      old.close();
      const db = openDatabase(path);
      expect(schemaVersion(db)).toBe(LATEST_SCHEMA_VERSION);
      if (from >= 1) expect(db.query("SELECT count(*) AS n FROM users").get()).toEqual({ n: 1 });
      if (from === 1) {
        // Upgraded accounts start at epoch 0 (old refresh tokens stay valid) and are not pending.
        expect(db.query("SELECT credential_epoch, is_pending_approval FROM users").get()).toEqual({
          credential_epoch: 0,
          is_pending_approval: 0,
        });
      }
      if (from >= 1 && from < 4) {
        // Accounts from before robots are people (issue 10).
        expect(db.query("SELECT kind, owner_namespace, description FROM users").get()).toEqual({
          kind: "person",
          owner_namespace: null,
          description: "",
        });
      }
      expect(db.query("PRAGMA integrity_check").get()).toEqual({ integrity_check: "ok" });
      expect(db.query("PRAGMA foreign_key_check").all()).toEqual([]);
    });
  }

  it("v2 marks disabled accounts that never logged in as pending approval (what registration left)", () => {
    const path = databasePath(makeTempDir());
    const old = new Database(path, { create: true, strict: true });
    migrate(old, 1);
    old.run(
      `INSERT INTO users (name, password_hash, is_enabled, created_at_unix, last_login_at_unix) VALUES
         ('waiting', 'x', 0, 1, 0), ('benched', 'x', 0, 1, 1700000000), ('active', 'x', 1, 1, 0)`,
    );
    old.close();
    const db = openDatabase(path);
    expect(db.query("SELECT name, is_pending_approval FROM users ORDER BY name").all()).toEqual([
      { name: "active", is_pending_approval: 0 },
      { name: "benched", is_pending_approval: 0 },
      { name: "waiting", is_pending_approval: 1 },
    ]);
  });

  it("refuse a database from a newer regauth with a clear message, and leave it untouched", () => {
    const path = databasePath(makeTempDir());
    openDatabase(path).close();
    const newer = new Database(path);
    newer.run(`PRAGMA user_version = ${LATEST_SCHEMA_VERSION + 1}`);
    newer.close();
    expect(() => openDatabase(path)).toThrow(DatabaseError);
    expect(() => openDatabase(path)).toThrow(
      `database was created by a newer regauth (schema v${LATEST_SCHEMA_VERSION + 1}, this binary knows v${LATEST_SCHEMA_VERSION})`,
    );
    const check = new Database(path);
    expect(schemaVersion(check)).toBe(LATEST_SCHEMA_VERSION + 1);
  });

  it("roll a failing migration back completely (version and tables unchanged)", () => {
    const path = databasePath(makeTempDir());
    const db = new Database(path, { create: true, strict: true });
    db.run("CREATE TABLE users (x INTEGER)"); // collides with 0001's CREATE TABLE users
    expect(() => migrate(db)).toThrow(/migration 0001_create_accounts.sql failed/);
    expect(schemaVersion(db)).toBe(0);
    expect(tables(db)).toEqual(["users"]);
  });

  it("refuse a file that is not a database", async () => {
    const path = join(makeTempDir(), "regauth.db");
    await Bun.write(path, "this is not sqlite ".repeat(100));
    expect(() => openDatabase(path)).toThrow(DatabaseError);
  });
});
