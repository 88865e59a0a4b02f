/**
 * Robot accounts (issue 10 item 4; docs/access-tokens.md "Robot accounts"): CI credentials that
 * belong to the registry (administrators) or to a namespace (its admins), not to a person.
 * A robot is a users row with kind 'robot', named `<owner>+<name>` (`team+ci`, or `regauth+ci`
 * for the registry's own), password hash '!' (no hash verifies against it: the database
 * authenticator denies robots before hashing), never an administrator, never a personal
 * namespace. '+' is not allowed in person names (src/accounts/users.ts usernameProblem), so no
 * one can register a robot's name, and "regauth" is a reserved name no one can register.
 * Its credentials are access tokens (src/access-tokens/); its rights are ordinary grants to its
 * full name.
 */
import type { Database } from "bun:sqlite";
import { usernameProblem } from "../accounts/users.ts";
import { BadRequest, Conflict, NotFound } from "../errors.ts";

export interface Robot {
  /** The full name, `<owner>+<name>`. */
  name: string;
  ownerNamespace: string | null;
  description: string;
  createdAtUnix: number;
  isEnabled: boolean;
  lastLoginAtUnix: number;
}

/** The owner part of a registry-owned robot's name. */
export const REGISTRY_ROBOT_OWNER = "regauth";
export const ROBOT_PASSWORD_HASH = "!";
export const MAX_ROBOT_DESCRIPTION_LENGTH = 256;

interface RobotRow {
  name: string;
  owner_namespace: string | null;
  description: string;
  created_at_unix: number;
  is_enabled: number;
  last_login_at_unix: number;
}

function toRobot(row: RobotRow): Robot {
  return {
    name: row.name,
    ownerNamespace: row.owner_namespace,
    description: row.description,
    createdAtUnix: row.created_at_unix,
    isEnabled: row.is_enabled === 1,
    lastLoginAtUnix: row.last_login_at_unix,
  };
}

const SELECT_ROBOTS =
  "SELECT name, owner_namespace, description, created_at_unix, is_enabled, last_login_at_unix FROM users WHERE kind = 'robot'";

function checkNamePart(what: string, value: unknown): string {
  if (typeof value !== "string") throw new BadRequest(`the robot's ${what} must be a string`);
  const problem = usernameProblem(value);
  if (problem)
    throw new BadRequest(`invalid robot ${what} ${JSON.stringify(value).slice(0, 80)}: ${problem}`);
  return value;
}

/** `team+ci`; `regauth+ci` when the registry owns it. */
export function robotFullName(ownerNamespace: string | null, name: string): string {
  return `${ownerNamespace ?? REGISTRY_ROBOT_OWNER}+${name}`;
}

/** Whether `name` has the shape of a robot's name (persons' names cannot contain '+'). */
export function isRobotName(name: string): boolean {
  return name.includes("+");
}

export function createRobot(
  db: Database,
  input: { ownerNamespace: string | null; name: string; description: string; nowUnix: number },
): Robot {
  const namespace = input.ownerNamespace === null ? null : checkNamePart("namespace", input.ownerNamespace);
  if (namespace === REGISTRY_ROBOT_OWNER)
    throw new BadRequest(
      `"${REGISTRY_ROBOT_OWNER}" is the registry's own: leave the namespace out for a registry robot`,
    );
  const name = checkNamePart("name", input.name);
  const description = input.description ?? "";
  if (typeof description !== "string") throw new BadRequest("the description must be a string");
  if (description.length > MAX_ROBOT_DESCRIPTION_LENGTH)
    throw new BadRequest(`the description is longer than ${MAX_ROBOT_DESCRIPTION_LENGTH} characters`);
  if (/\p{Cc}/u.test(description))
    throw new BadRequest("the description must not contain control characters");
  const fullName = robotFullName(namespace, name);
  const row = db
    .query<RobotRow, Record<string, string | number | null>>(
      `INSERT INTO users (name, password_hash, kind, owner_namespace, description, created_at_unix)
       SELECT $name, '${ROBOT_PASSWORD_HASH}', 'robot', $namespace, $description, $now
       WHERE NOT EXISTS (SELECT 1 FROM retired_names WHERE name = $name)
       ON CONFLICT (name) DO NOTHING
       RETURNING name, owner_namespace, description, created_at_unix, is_enabled, last_login_at_unix`,
    )
    .get({ name: fullName, namespace, description, now: input.nowUnix });
  if (row) return toRobot(row);
  const retired = db.query("SELECT 1 FROM retired_names WHERE name = ?").get(fullName);
  throw new Conflict(
    retired
      ? `the robot name ${fullName} belonged to a deleted robot; release it first (regauth user release ${fullName})`
      : `${fullName} already exists`,
  );
}

/** `ownerNamespace` undefined: every robot; null: the registry's; a string: that namespace's. */
export function listRobots(db: Database, filter: { ownerNamespace?: string | null } = {}): Robot[] {
  if (filter.ownerNamespace === undefined)
    return db.query<RobotRow, []>(`${SELECT_ROBOTS} ORDER BY name`).all().map(toRobot);
  if (filter.ownerNamespace === null)
    return db
      .query<RobotRow, []>(`${SELECT_ROBOTS} AND owner_namespace IS NULL ORDER BY name`)
      .all()
      .map(toRobot);
  return db
    .query<RobotRow, [string]>(`${SELECT_ROBOTS} AND owner_namespace = ? ORDER BY name`)
    .all(filter.ownerNamespace)
    .map(toRobot);
}

export function findRobot(db: Database, fullName: string): Robot | null {
  const row = db.query<RobotRow, [string]>(`${SELECT_ROBOTS} AND name = ?`).get(String(fullName));
  return row ? toRobot(row) : null;
}

export function getRobot(db: Database, fullName: string): Robot {
  const robot = findRobot(db, fullName);
  if (!robot) throw new NotFound(`no robot ${JSON.stringify(String(fullName)).slice(0, 100)}`);
  return robot;
}

/**
 * Deletes the robot with its tokens and grants (ON DELETE CASCADE) and retires the name, as for
 * people: a new robot of the same name would otherwise inherit what CI pushed under it.
 */
export function deleteRobot(db: Database, fullName: string, nowUnix: number): Robot {
  return db
    .transaction(() => {
      const robot = getRobot(db, fullName);
      db.query("DELETE FROM users WHERE name = ? AND kind = 'robot'").run(robot.name);
      db.query(
        `INSERT INTO retired_names (name, retired_at_unix) VALUES ($name, $now)
         ON CONFLICT (name) DO UPDATE SET retired_at_unix = excluded.retired_at_unix`,
      ).run({ name: robot.name, now: nowUnix });
      return robot;
    })
    .immediate();
}
