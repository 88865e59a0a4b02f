/**
 * The `xorm_auth` and `acl_xorm` config sections: docker_auth's keys (authn/xorm_authn.go
 * XormAuthnConfig, authz/acl_xorm.go XormAuthzConfig) so an existing section loads unchanged, plus
 * regauth's opt-in `create_tables`. `checkSqlSection` resolves a section into connection settings
 * and reports every problem with its key path (docker_auth's Validate is a no-op).
 */
import { type Static, Type } from "@sinclair/typebox";
import type { ConfigProblem } from "../errors.ts";
import { type ConnectionSettings, DATABASE_TYPES, parseConnString, parseGoDuration } from "./conn-string.ts";

const strict = { additionalProperties: false } as const;

const sqlKeys = {
  database_type: Type.String({
    description: "mysql (also MariaDB), postgres or sqlite3, as in docker_auth.",
  }),
  conn_string: Type.String({
    minLength: 1,
    description:
      "As docker_auth's Go drivers take it: user:pass@tcp(host:port)/db?tls=true (mysql); postgres://user:pass@host/db?sslmode=verify-full or host=... dbname=... (postgres); a file path (sqlite3). docs/sql-backends.md.",
  }),
  create_tables: Type.Optional(
    Type.Boolean({
      description:
        "regauth extension: create the table docker_auth would have created when it is missing. Default false: the table is yours, regauth only reads it.",
    }),
  ),
};

export const XormAuthConfig = Type.Object(sqlKeys, strict);

export const AclXormConfig = Type.Object(
  {
    ...sqlKeys,
    cache_ttl: Type.Optional(
      Type.Union([Type.String(), Type.Number()], {
        description:
          "How often the ACL table is read again, as a Go duration (1m, 30s). Missing or 0: every minute (docker_auth would panic).",
      }),
    ),
  },
  strict,
);

export type XormAuthConfig = Static<typeof XormAuthConfig>;
export type AclXormConfig = Static<typeof AclXormConfig>;

/** Reload interval when cache_ttl is missing or 0. */
export const DEFAULT_ACL_RELOAD_MS = 60_000;
/** Reloading more often only loads the database; a shorter cache_ttl is a config error. */
export const MIN_ACL_RELOAD_MS = 1_000;

export interface SqlBackendSettings {
  connection: ConnectionSettings;
  createTables: boolean;
}

export function checkSqlSection(
  section: XormAuthConfig,
  path: string,
  problems: ConfigProblem[],
): SqlBackendSettings | null {
  if (!Object.hasOwn(DATABASE_TYPES, section.database_type)) {
    problems.push({
      path: `${path}.database_type`,
      message: `${JSON.stringify(section.database_type)} is not supported; use mysql (MySQL or MariaDB), postgres or sqlite3`,
    });
    return null;
  }
  const parsed = parseConnString(section.database_type, section.conn_string);
  if ("problem" in parsed) {
    problems.push({ path: `${path}.conn_string`, message: parsed.problem });
    return null;
  }
  return { connection: parsed.settings, createTables: section.create_tables === true };
}

/** cache_ttl in milliseconds; null (with a problem) when it cannot be used. */
export function aclReloadIntervalMs(
  section: AclXormConfig,
  path: string,
  problems: ConfigProblem[],
): number | null {
  const value = section.cache_ttl;
  if (value === undefined || value === 0 || value === "0") return DEFAULT_ACL_RELOAD_MS;
  const ms = typeof value === "string" ? parseGoDuration(value) : null;
  if (typeof value === "number") {
    problems.push({
      path: `${path}.cache_ttl`,
      message: `write a duration such as "1m" or "30s" (docker_auth reads a bare number as nanoseconds), got ${value}`,
    });
    return null;
  }
  if (ms === null) {
    problems.push({
      path: `${path}.cache_ttl`,
      message: `not a duration such as "1m" or "30s": ${JSON.stringify(value)}`,
    });
    return null;
  }
  if (ms === 0) return DEFAULT_ACL_RELOAD_MS;
  if (ms < MIN_ACL_RELOAD_MS) {
    problems.push({
      path: `${path}.cache_ttl`,
      message: `at least 1s; reading the table more often only loads the database`,
    });
    return null;
  }
  return ms;
}
