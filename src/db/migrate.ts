/**
 * Schema migrations: `migrations/NNNN_verb_noun.sql`, listed here explicitly so that
 * `bun build --compile` embeds them in the binary (a unit test checks this list against the
 * directory). Forward-only. Each one runs in a single transaction together with
 * `PRAGMA user_version = N`, so a crash leaves the database at version N-1 or N, never between.
 */
import type { Database } from "bun:sqlite";
import m0001 from "../../migrations/0001_create_accounts.sql" with { type: "text" };
import m0002 from "../../migrations/0002_create_retired_names.sql" with { type: "text" };
import m0003 from "../../migrations/0003_index_permissions.sql" with { type: "text" };
import m0004 from "../../migrations/0004_create_access_tokens.sql" with { type: "text" };
import m0005 from "../../migrations/0005_create_audit_events.sql" with { type: "text" };
import m0006 from "../../migrations/0006_create_image_index.sql" with { type: "text" };
import m0007 from "../../migrations/0007_create_webhooks.sql" with { type: "text" };
import m0008 from "../../migrations/0008_create_web_sessions.sql" with { type: "text" };
import m0009 from "../../migrations/0009_create_identity_links.sql" with { type: "text" };
import { DatabaseError } from "./database-error.ts";

export interface Migration {
  /** The schema version after this migration; equals its position in MIGRATIONS plus one. */
  version: number;
  file: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  { version: 1, file: "0001_create_accounts.sql", sql: m0001 },
  { version: 2, file: "0002_create_retired_names.sql", sql: m0002 },
  { version: 3, file: "0003_index_permissions.sql", sql: m0003 },
  { version: 4, file: "0004_create_access_tokens.sql", sql: m0004 },
  { version: 5, file: "0005_create_audit_events.sql", sql: m0005 },
  { version: 6, file: "0006_create_image_index.sql", sql: m0006 },
  { version: 7, file: "0007_create_webhooks.sql", sql: m0007 },
  { version: 8, file: "0008_create_web_sessions.sql", sql: m0008 },
  { version: 9, file: "0009_create_identity_links.sql", sql: m0009 },
];

export const LATEST_SCHEMA_VERSION = MIGRATIONS.at(-1)?.version ?? 0;

export function schemaVersion(db: Database): number {
  const row = db.query<{ user_version: number }, []>("PRAGMA user_version").get();
  return row?.user_version ?? 0;
}

/**
 * Brings the database up to `targetVersion` (default: the latest). Refuses a database written by a
 * newer regauth: its schema may mean things this binary does not know.
 */
export function migrate(db: Database, targetVersion = LATEST_SCHEMA_VERSION): void {
  const current = schemaVersion(db);
  if (current > LATEST_SCHEMA_VERSION) {
    throw new DatabaseError(
      `database was created by a newer regauth (schema v${current}, this binary knows v${LATEST_SCHEMA_VERSION}); ` +
        "run the newer regauth, or restore a backup made before the upgrade",
    );
  }
  for (const migration of MIGRATIONS) {
    if (migration.version <= current || migration.version > targetVersion) continue;
    // BEGIN IMMEDIATE takes the write lock up front: two processes starting at once serialize
    // here, and the second sees the new user_version and skips the migration.
    db.run("BEGIN IMMEDIATE");
    try {
      if (schemaVersion(db) >= migration.version) {
        db.run("COMMIT");
        continue;
      }
      db.run(migration.sql);
      db.run(`PRAGMA user_version = ${migration.version}`);
      db.run("COMMIT");
    } catch (error) {
      db.run("ROLLBACK");
      throw new DatabaseError(`migration ${migration.file} failed: ${(error as Error).message}`);
    }
  }
}
