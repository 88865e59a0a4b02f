/** Groups of database users, so that a grant can name a team instead of each member. */
import type { Database } from "bun:sqlite";
import { BadRequest, Conflict, NotFound } from "../errors.ts";
import { getUser, usernameProblem } from "./users.ts";

export interface Group {
  id: number;
  name: string;
  createdAtUnix: number;
  members: string[];
}

/** Group names follow the user name rules (they appear next to user names in grants). */
export function checkGroupName(name: string): void {
  const problem = usernameProblem(name);
  if (problem)
    throw new BadRequest(
      `invalid group name ${JSON.stringify(name)}: ${problem.replace("name", "group name")}`,
    );
}

export function findGroupId(db: Database, name: string): number | null {
  return db.query<{ id: number }, [string]>("SELECT id FROM groups WHERE name = ?").get(name)?.id ?? null;
}

export function getGroupId(db: Database, name: string): number {
  const id = findGroupId(db, name);
  if (id === null) throw new NotFound(`no group ${JSON.stringify(name)}`);
  return id;
}

export function createGroup(db: Database, name: string, nowUnix: number): void {
  checkGroupName(name);
  const result = db
    .query("INSERT INTO groups (name, created_at_unix) VALUES ($name, $now) ON CONFLICT (name) DO NOTHING")
    .run({ name, now: nowUnix });
  if (result.changes === 0) throw new Conflict(`group ${JSON.stringify(name)} already exists`);
}

/** Deletes the group; its grants and memberships go with it (ON DELETE CASCADE). */
export function deleteGroup(db: Database, name: string): void {
  const result = db.query("DELETE FROM groups WHERE name = $name").run({ name });
  if (result.changes === 0) throw new NotFound(`no group ${JSON.stringify(name)}`);
}

export function addMember(db: Database, group: string, user: string): void {
  const groupId = getGroupId(db, group);
  const userId = getUser(db, user).id;
  db.query("INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES ($groupId, $userId)").run({
    groupId,
    userId,
  });
}

export function removeMember(db: Database, group: string, user: string): void {
  const groupId = getGroupId(db, group);
  const userId = getUser(db, user).id;
  const result = db
    .query("DELETE FROM group_members WHERE group_id = $groupId AND user_id = $userId")
    .run({ groupId, userId });
  if (result.changes === 0) throw new NotFound(`${user} is not a member of ${group}`);
}

export function listGroups(db: Database): Group[] {
  const groups = db
    .query<{ id: number; name: string; created_at_unix: number }, []>("SELECT * FROM groups ORDER BY name")
    .all();
  const members = db.query<{ name: string }, [number]>(
    "SELECT u.name FROM group_members m JOIN users u ON u.id = m.user_id WHERE m.group_id = ? ORDER BY u.name",
  );
  return groups.map((g) => ({
    id: g.id,
    name: g.name,
    createdAtUnix: g.created_at_unix,
    members: members.all(g.id).map((m) => m.name),
  }));
}
