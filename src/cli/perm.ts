/** `regauth perm grant|revoke|list` and `regauth group ...`: offline, on the accounts database. */
import { addMember, createGroup, deleteGroup, listGroups, removeMember } from "../accounts/groups.ts";
import {
  formatGrantee,
  grant,
  isLevel,
  listPermissions,
  parseGrantee,
  revoke,
} from "../accounts/permissions.ts";
import { type ParsedArgs, UsageError } from "./args.ts";
import { expectArgs, formatUnix, nowUnix, openDatabaseFromArgs } from "./accounts-database.ts";
import { table } from "./user.ts";

export const PERM_USAGE = `regauth perm SUBCOMMAND [--data-dir DIR | --config FILE]

  grant GRANTEE PATTERN LEVEL    grant (or change to) LEVEL on PATTERN
  revoke GRANTEE PATTERN         remove that grant
  list                           list every grant

GRANTEE  a user (alice), a group (@devs), or * for everyone including anonymous clients
         (public images; read only)
PATTERN  team/app (one repository), team/* (everything under team/, nested too), * (all)
LEVEL    read (pull), write (pull, push), admin (pull, push, delete)

Example: regauth perm grant alice 'team/*' write
Every user also holds admin on NAME/* (accounts.personal_namespaces); administrators hold admin
everywhere and may list the catalog. Exit codes: 0 ok, 1 failed, 2 usage.`;

export async function permCommand(args: ParsedArgs): Promise<number> {
  const sub = args.positionals[0];
  if (sub === undefined) throw new UsageError("which subcommand? grant, revoke or list");
  switch (sub) {
    case "grant": {
      const [grantee, pattern, level] = expectArgs(args, ["GRANTEE", "PATTERN", "LEVEL"]) as [
        string,
        string,
        string,
      ];
      if (!isLevel(level))
        throw new UsageError(`LEVEL must be read, write or admin, not ${JSON.stringify(level)}`);
      const db = await openDatabaseFromArgs(args);
      grant(db, parseGrantee(grantee), pattern, level, nowUnix());
      process.stdout.write(`granted ${level} on ${pattern} to ${grantee}\n`);
      return 0;
    }
    case "revoke": {
      const [grantee, pattern] = expectArgs(args, ["GRANTEE", "PATTERN"]) as [string, string];
      const db = await openDatabaseFromArgs(args);
      revoke(db, parseGrantee(grantee), pattern);
      process.stdout.write(`revoked ${grantee} on ${pattern}\n`);
      return 0;
    }
    case "list": {
      expectArgs(args, []);
      const db = await openDatabaseFromArgs(args, "read");
      const rows = listPermissions(db).map((p) => [
        formatGrantee(p.grantee),
        p.pattern,
        p.level,
        formatUnix(p.createdAtUnix),
      ]);
      process.stdout.write(table(["GRANTEE", "PATTERN", "LEVEL", "GRANTED"], rows));
      return 0;
    }
    default:
      throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}`);
  }
}

export const GROUP_USAGE = `regauth group SUBCOMMAND [--data-dir DIR | --config FILE]

  create NAME                    create a group (grant to it with: regauth perm grant @NAME ...)
  delete NAME                    delete it, with its grants
  add-member GROUP USER          add a user to the group
  remove-member GROUP USER       remove a user from the group
  list                           list groups and members

Exit codes: 0 ok, 1 failed, 2 usage.`;

export async function groupCommand(args: ParsedArgs): Promise<number> {
  const sub = args.positionals[0];
  if (sub === undefined)
    throw new UsageError("which subcommand? create, delete, add-member, remove-member or list");
  switch (sub) {
    case "create":
    case "delete": {
      const [name] = expectArgs(args, ["NAME"]) as [string];
      const db = await openDatabaseFromArgs(args);
      if (sub === "create") createGroup(db, name, nowUnix());
      else deleteGroup(db, name);
      process.stdout.write(`${sub}d group ${name}\n`);
      return 0;
    }
    case "add-member":
    case "remove-member": {
      const [group, user] = expectArgs(args, ["GROUP", "USER"]) as [string, string];
      const db = await openDatabaseFromArgs(args);
      if (sub === "add-member") addMember(db, group, user);
      else removeMember(db, group, user);
      process.stdout.write(
        `${sub === "add-member" ? "added" : "removed"} ${user} ${sub === "add-member" ? "to" : "from"} ${group}\n`,
      );
      return 0;
    }
    case "list": {
      expectArgs(args, []);
      const db = await openDatabaseFromArgs(args, "read");
      const rows = listGroups(db).map((g) => [g.name, g.members.join(",") || "-"]);
      process.stdout.write(table(["GROUP", "MEMBERS"], rows));
      return 0;
    }
    default:
      throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}`);
  }
}
