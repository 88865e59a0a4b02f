/** Groups and members (administrators only): authorize → validate → change → audit → return. */
import {
  addMember as insertMember,
  checkGroupName,
  createGroup as insertGroup,
  deleteGroup as removeGroup,
  type Group,
  listGroups as readGroups,
  removeMember as deleteMember,
} from "../accounts/groups.ts";
import { NotFound } from "../errors.ts";
import { authorizeOrThrow, callerOf } from "./caller.ts";
import type { ManagementContext } from "./context.ts";
import { paginate } from "./paging.ts";
import type { CreateGroupRequest, GroupView, Page, PageRequest } from "./schemas.ts";
import { record } from "./users.ts";
import { groupView } from "./views.ts";

function readGroup(ctx: ManagementContext, name: string): Group {
  const group = readGroups(ctx.db).find((g) => g.name === name);
  if (!group) throw new NotFound(`no group ${JSON.stringify(name)}`);
  return group;
}

export function listGroups(ctx: ManagementContext, page: PageRequest = {}): Page<GroupView> {
  authorizeOrThrow(callerOf(ctx), { op: "readGroups" });
  return paginate(readGroups(ctx.db), (g) => g.name, page, groupView);
}

export function getGroup(ctx: ManagementContext, name: string): GroupView {
  authorizeOrThrow(callerOf(ctx), { op: "readGroups" });
  return groupView(readGroup(ctx, name));
}

export function createGroup(ctx: ManagementContext, input: CreateGroupRequest): GroupView {
  authorizeOrThrow(callerOf(ctx), { op: "changeGroups" });
  checkGroupName(input.name);
  insertGroup(ctx.db, input.name, ctx.nowUnix);
  record(ctx, "group.created", { name: input.name });
  return groupView(readGroup(ctx, input.name));
}

export function deleteGroup(ctx: ManagementContext, name: string): GroupView {
  authorizeOrThrow(callerOf(ctx), { op: "changeGroups" });
  const group = readGroup(ctx, name);
  removeGroup(ctx.db, name);
  record(ctx, "group.deleted", { name, before: { members: group.members } });
  return groupView(group);
}

export function addMember(ctx: ManagementContext, input: { group: string; user: string }): GroupView {
  authorizeOrThrow(callerOf(ctx), { op: "changeGroups" });
  const before = readGroup(ctx, input.group);
  insertMember(ctx.db, input.group, input.user);
  const after = readGroup(ctx, input.group);
  record(ctx, "group.member-added", {
    group: input.group,
    user: input.user,
    before: { members: before.members },
    after: { members: after.members },
  });
  return groupView(after);
}

export function removeMember(ctx: ManagementContext, input: { group: string; user: string }): GroupView {
  authorizeOrThrow(callerOf(ctx), { op: "changeGroups" });
  const before = readGroup(ctx, input.group);
  deleteMember(ctx.db, input.group, input.user);
  const after = readGroup(ctx, input.group);
  record(ctx, "group.member-removed", {
    group: input.group,
    user: input.user,
    before: { members: before.members },
    after: { members: after.members },
  });
  return groupView(after);
}
