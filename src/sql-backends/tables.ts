/**
 * The two tables docker_auth's xorm back-ends use, named as xorm's default SnakeMapper names the
 * Go structs: `XormUser` → `xorm_user` (authn/xorm_authn.go: Id pk autoincr, Username and
 * PasswordHash VARCHAR(128) NOT NULL, Labels JSON) and `XormACLEntry` → `xorm_acl_entry`
 * (authz/acl_xorm.go TableName: the embedded ACLEntry as JSON in `acl_entry`, and `seq`).
 *
 * The tables belong to the operator: regauth reads them and never alters or drops them. When one
 * is missing, the error shows the CREATE TABLE that docker_auth's Sync2 would have run, and
 * `create_tables: true` runs it (CREATE TABLE IF NOT EXISTS, nothing else).
 */
import type { Engine } from "./conn-string.ts";
import { classifyFailure, type SqlDatabase } from "./sql-database.ts";

export interface TableSpec {
  name: string;
  /** Selects no row; fails when the table or one of our columns is missing. Constant text. */
  probe: string;
  create: Readonly<Record<Engine, string>>;
}

export const USER_TABLE: TableSpec = {
  name: "xorm_user",
  probe: "SELECT id, username, password_hash, labels FROM xorm_user WHERE 1 = 0",
  create: {
    mysql:
      "CREATE TABLE IF NOT EXISTS `xorm_user` (`id` BIGINT(20) PRIMARY KEY AUTO_INCREMENT NOT NULL, `username` VARCHAR(128) NOT NULL, `password_hash` VARCHAR(128) NOT NULL, `labels` JSON NULL) DEFAULT CHARSET utf8mb4",
    postgres:
      'CREATE TABLE IF NOT EXISTS "xorm_user" ("id" BIGSERIAL PRIMARY KEY NOT NULL, "username" VARCHAR(128) NOT NULL, "password_hash" VARCHAR(128) NOT NULL, "labels" JSON NULL)',
    sqlite:
      "CREATE TABLE IF NOT EXISTS `xorm_user` (`id` INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, `username` TEXT NOT NULL, `password_hash` TEXT NOT NULL, `labels` TEXT NULL)",
  },
};

export const ACL_TABLE: TableSpec = {
  name: "xorm_acl_entry",
  probe: "SELECT seq, acl_entry FROM xorm_acl_entry WHERE 1 = 0",
  create: {
    mysql:
      "CREATE TABLE IF NOT EXISTS `xorm_acl_entry` (`acl_entry` TEXT NULL, `seq` BIGINT(20) NULL) DEFAULT CHARSET utf8mb4",
    postgres: 'CREATE TABLE IF NOT EXISTS "xorm_acl_entry" ("acl_entry" TEXT NULL, "seq" BIGINT NULL)',
    sqlite: "CREATE TABLE IF NOT EXISTS `xorm_acl_entry` (`acl_entry` TEXT NULL, `seq` INTEGER NULL)",
  },
};

/** A table regauth needs is not there (or lacks a column); the message says how to make it. */
export class TableProblem extends Error {
  constructor(
    readonly table: TableSpec,
    readonly engine: Engine,
    readonly kind: "missing-table" | "bad-layout",
  ) {
    super(
      kind === "missing-table"
        ? `table ${table.name} does not exist; create it as docker_auth would have: ${table.create[engine]} (or set create_tables: true)`
        : `table ${table.name} lacks a column regauth reads; docker_auth's layout is: ${table.create[engine]}`,
    );
    this.name = "TableProblem";
  }
}

/**
 * Checks that the table is there, creating it first when `create` is set. Throws TableProblem for
 * a missing table or column, and the driver's error when the database cannot be reached.
 */
export async function checkTable(db: SqlDatabase, table: TableSpec, create: boolean): Promise<void> {
  if (create) await db.execute(table.create[db.engine]);
  try {
    await db.execute(table.probe);
  } catch (error) {
    throw asTableProblem(error, db, table) ?? error;
  }
}

/** The TableProblem a query error stands for, or null when it is not about the table. */
export function asTableProblem(error: unknown, db: SqlDatabase, table: TableSpec): TableProblem | null {
  const kind = classifyFailure(error);
  return kind === "unavailable" ? null : new TableProblem(table, db.engine, kind);
}
