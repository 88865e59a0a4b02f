/**
 * `regauth perm grant|revoke|list` and `regauth group ...`, written once over ManagementClient:
 * offline on the data directory or remote through the API (src/cli/backend.ts).
 */
import { isLevel } from "../accounts/permissions.ts";
import { type ParsedArgs, stringFlag, UsageError } from "./args.ts";
import { expectArgs } from "./accounts-database.ts";
import { BACKEND_HELP } from "./backend.ts";
import type { CommandIo } from "./command-io.ts";
import { allPages, type PermissionFilter } from "./management-client.ts";
import { cell, json, outputFormat, shortTime, table } from "./output.ts";
import type { GroupView, PermissionView } from "./views.ts";

export const PERM_USAGE = `regauth perm SUBCOMMAND [--data-dir DIR | --config FILE | --remote URL] [--output json]

  grant GRANTEE PATTERN LEVEL    grant (or change to) LEVEL on PATTERN
  revoke GRANTEE PATTERN         remove that grant
  list [--user U] [--group G] [--pattern P]
                                 list grants (all, or those of a user, a group, a pattern)

GRANTEE  a user (alice), a group (@devs), or * for everyone including anonymous clients
         (public images; read only)
PATTERN  team/app (one repository), team/* (everything under team/, nested too), * (all)
LEVEL    read (pull), write (pull, push), admin (pull, push, delete)

Example: regauth perm grant alice 'team/*' write
Every user also holds admin on NAME/* (accounts.personal_namespaces); administrators hold admin
everywhere and may list the catalog. Exit codes: 0 ok, 1 failed, 2 usage.

${BACKEND_HELP}`;

export const PERM_VALUE_FLAGS = ["user", "group", "pattern"];

export function permissionTable(permissions: PermissionView[]): string {
  return table(
    ["GRANTEE", "PATTERN", "LEVEL", "GRANTED"],
    permissions.map((p) => [cell(p.grantee), cell(p.pattern), p.level, shortTime(p.created_at)]),
  );
}

export async function permCommand(args: ParsedArgs, io: CommandIo): Promise<number> {
  const sub = args.positionals[0];
  if (sub === undefined) throw new UsageError("which subcommand? grant, revoke or list");
  const format = outputFormat(args);
  const print = (permission: PermissionView, message: string) =>
    io.out(format === "json" ? json(permission) : `${message}\n`);
  switch (sub) {
    case "grant": {
      const [grantee, pattern, level] = expectArgs(args, ["GRANTEE", "PATTERN", "LEVEL"]) as [
        string,
        string,
        string,
      ];
      if (!isLevel(level))
        throw new UsageError(`LEVEL must be read, write or admin, not ${JSON.stringify(level)}`);
      const granted = await (await io.client(args)).grant({ grantee, pattern, level });
      print(granted, `granted ${level} on ${pattern} to ${grantee}`);
      return 0;
    }
    case "revoke": {
      const [grantee, pattern] = expectArgs(args, ["GRANTEE", "PATTERN"]) as [string, string];
      const revoked = await (await io.client(args)).revoke({ grantee, pattern });
      print(revoked, `revoked ${grantee} on ${pattern}`);
      return 0;
    }
    case "list": {
      expectArgs(args, []);
      const filter: PermissionFilter = {};
      for (const key of ["user", "group", "pattern"] as const) {
        const value = stringFlag(args, key);
        if (value !== undefined) filter[key] = value;
      }
      const client = await io.client(args);
      const permissions = await allPages((page) => client.listPermissions(filter, page));
      io.out(format === "json" ? json(permissions) : permissionTable(permissions));
      return 0;
    }
    default:
      throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}`);
  }
}

export const GROUP_USAGE = `regauth group SUBCOMMAND [--data-dir DIR | --config FILE | --remote URL] [--output json]

  create NAME                    create a group (grant to it with: regauth perm grant @NAME ...)
  delete NAME                    delete it, with its grants
  add-member GROUP USER          add a user to the group
  remove-member GROUP USER       remove a user from the group
  list                           list groups and members
  show NAME                      one group

Exit codes: 0 ok, 1 failed, 2 usage.

${BACKEND_HELP}`;

export function groupTable(groups: GroupView[]): string {
  return table(
    ["GROUP", "MEMBERS"],
    groups.map((g) => [cell(g.name), cell(g.members.join(",")) || "-"]),
  );
}

export async function groupCommand(args: ParsedArgs, io: CommandIo): Promise<number> {
  const sub = args.positionals[0];
  if (sub === undefined)
    throw new UsageError("which subcommand? create, delete, add-member, remove-member, list or show");
  const format = outputFormat(args);
  const print = (group: GroupView, message: string) =>
    io.out(format === "json" ? json(group) : `${message}\n`);
  switch (sub) {
    case "create":
    case "delete": {
      const [name] = expectArgs(args, ["NAME"]) as [string];
      const client = await io.client(args);
      const group =
        sub === "create" ? await client.createGroup({ name }) : await client.deleteGroup({ name });
      print(group, `${sub}d group ${name}`);
      return 0;
    }
    case "add-member":
    case "remove-member": {
      const [group, user] = expectArgs(args, ["GROUP", "USER"]) as [string, string];
      const client = await io.client(args);
      const changed =
        sub === "add-member"
          ? await client.addMember({ group, user })
          : await client.removeMember({ group, user });
      print(
        changed,
        `${sub === "add-member" ? "added" : "removed"} ${user} ${sub === "add-member" ? "to" : "from"} ${group}`,
      );
      return 0;
    }
    case "list": {
      expectArgs(args, []);
      const client = await io.client(args);
      const groups = await allPages((page) => client.listGroups(page));
      io.out(format === "json" ? json(groups) : groupTable(groups));
      return 0;
    }
    case "show": {
      const [name] = expectArgs(args, ["NAME"]) as [string];
      const group = await (await io.client(args)).getGroup({ name });
      io.out(format === "json" ? json(group) : groupTable([group]));
      return 0;
    }
    default:
      throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}`);
  }
}
