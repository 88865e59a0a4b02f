/**
 * `regauth user add|list|show|passwd|disable|enable|promote|demote|rm|release`, written once over
 * ManagementClient: offline on the data directory or remote through the API (src/cli/backend.ts).
 */
import { checkUsername } from "../accounts/users.ts";
import { type ParsedArgs, stringFlag, UsageError } from "./args.ts";
import { expectArgs } from "./accounts-database.ts";
import { BACKEND_HELP } from "./backend.ts";
import type { CommandIo } from "./command-io.ts";
import { allPages, type UserFilter } from "./management-client.ts";
import { cell, json, outputFormat, shortTime, table } from "./output.ts";
import type { UserView } from "./views.ts";

export const USER_USAGE = `regauth user SUBCOMMAND [--data-dir DIR | --config FILE | --remote URL] [--output json]

  add NAME [--admin] [--disabled] [--password-stdin]   create a user (password prompted, or from stdin)
  list [--retired] [--state S] [--query TEXT]           list users (--retired: names of deleted users;
                                                        S: enabled, disabled, pending, admin)
  show NAME                                             one user
  passwd NAME [--password-stdin] [--current]            set a new password (--current: yours, through
                                                        the API, which asks for the current one first;
                                                        with --password-stdin: current, then new, one a line)
  disable NAME                                          refuse the user's logins from now on
  enable NAME                                           allow them again (also: approve a registration)
  rm NAME                                               delete the user, with their grants; the name
                                                        stays retired (nobody can take it) until release
  release NAME                                          let a deleted user's name be registered or added again
  promote NAME                                          make the user an administrator
  demote NAME                                           make the user an ordinary user again

Offline it works on <data_dir>/regauth.db; safe while regauth serve runs (changes apply at once).
Names: lowercase letters, digits, '.', '_', '-', starting with a letter or digit, at most 64.
Passwords: 8 to 256 characters; never on the command line. Exit codes: 0 ok, 1 failed, 2 usage.

${BACKEND_HELP}`;

export const USER_BOOLEAN_FLAGS = ["admin", "disabled", "password-stdin", "retired", "current"];
export const USER_VALUE_FLAGS = ["state", "query"];

export function userState(user: UserView): string {
  return user.is_enabled ? "enabled" : user.is_pending_approval ? "pending approval" : "disabled";
}

export function userTable(users: UserView[]): string {
  return table(
    ["NAME", "STATE", "ROLE", "CREATED", "LAST LOGIN"],
    users.map((u) => [
      cell(u.name),
      userState(u),
      u.is_admin ? "admin" : "-",
      shortTime(u.created_at),
      shortTime(u.last_login_at),
    ]),
  );
}

function stateFilter(args: ParsedArgs): UserFilter["state"] {
  const state = stringFlag(args, "state");
  if (
    state === undefined ||
    state === "enabled" ||
    state === "disabled" ||
    state === "pending" ||
    state === "admin"
  )
    return state;
  throw new UsageError(`--state must be enabled, disabled, pending or admin, not ${JSON.stringify(state)}`);
}

export async function userCommand(args: ParsedArgs, io: CommandIo): Promise<number> {
  const sub = args.positionals[0];
  if (sub === undefined)
    throw new UsageError(
      "which subcommand? add, list, show, passwd, disable, enable, promote, demote, rm or release",
    );
  const format = outputFormat(args);
  const print = (user: UserView, message: string) => io.out(format === "json" ? json(user) : `${message}\n`);
  switch (sub) {
    case "add": {
      const [name] = expectArgs(args, ["NAME"]) as [string];
      checkUsername(name); // before asking for a password the server would refuse the name for
      const client = await io.client(args);
      const [password] = (await io.readSecrets(args, [{ prompt: "New password: ", confirm: true }])) as [
        string,
      ];
      const user = await client.createUser({
        name,
        password,
        ...(args.flags.has("admin") ? { admin: true } : {}),
        ...(args.flags.has("disabled") ? { disabled: true } : {}),
      });
      print(user, `created user ${user.name}`);
      return 0;
    }
    case "list": {
      expectArgs(args, []);
      const client = await io.client(args);
      if (args.flags.has("retired")) {
        const names = await client.listRetiredNames();
        io.out(
          format === "json"
            ? json(names)
            : table(
                ["NAME", "RETIRED"],
                names.map((r) => [cell(r.name), shortTime(r.retired_at)]),
              ),
        );
        return 0;
      }
      const filter: UserFilter = {};
      const state = stateFilter(args);
      if (state !== undefined) filter.state = state;
      const q = stringFlag(args, "query");
      if (q !== undefined) filter.q = q;
      const users = await allPages((page) => client.listUsers(filter, page));
      io.out(format === "json" ? json(users) : userTable(users));
      return 0;
    }
    case "show": {
      const [name] = expectArgs(args, ["NAME"]) as [string];
      const user = await (await io.client(args)).getUser({ name });
      io.out(format === "json" ? json(user) : userTable([user]));
      return 0;
    }
    case "passwd": {
      const [name] = expectArgs(args, ["NAME"]) as [string];
      const client = await io.client(args);
      const current = args.flags.has("current");
      const requests = current
        ? [
            { prompt: "Current password: ", confirm: false },
            { prompt: "New password: ", confirm: true },
          ]
        : [{ prompt: "New password: ", confirm: true }];
      const secrets = await io.readSecrets(args, requests);
      const password = secrets[secrets.length - 1] as string;
      const user = await client.setPassword(
        current ? { name, password, current_password: secrets[0] as string } : { name, password },
      );
      print(user, `password of ${user.name} changed`);
      return 0;
    }
    case "disable":
    case "enable": {
      const [name] = expectArgs(args, ["NAME"]) as [string];
      const user = await (await io.client(args)).updateUser({ name, enabled: sub === "enable" });
      print(user, `${sub}d ${user.name}`);
      return 0;
    }
    case "promote":
    case "demote": {
      const [name] = expectArgs(args, ["NAME"]) as [string];
      const user = await (await io.client(args)).updateUser({ name, admin: sub === "promote" });
      print(
        user,
        `${user.name} is ${sub === "promote" ? "now an administrator" : "no longer an administrator"}`,
      );
      return 0;
    }
    case "rm": {
      const [name] = expectArgs(args, ["NAME"]) as [string];
      const user = await (await io.client(args)).deleteUser({ name });
      print(
        user,
        `deleted user ${name}; the name stays retired, so nobody can register it and take over ${name}/*\n` +
          `(delete the images there first, or hand them over knowingly: regauth user release ${name})`,
      );
      return 0;
    }
    case "release": {
      const [name] = expectArgs(args, ["NAME"]) as [string];
      const released = await (await io.client(args)).releaseName({ name });
      io.out(
        format === "json"
          ? json(released)
          : `released ${name}: it can be registered or added again, and its new owner gets ${name}/*\n`,
      );
      return 0;
    }
    default:
      throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}`);
  }
}
