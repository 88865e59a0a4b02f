/** `regauth user add|list|passwd|disable|enable|rm|release`: offline, on the accounts database. */
import {
  checkPassword,
  checkUsername,
  createUser,
  deleteUser,
  hashNewPassword,
  listRetiredNames,
  listUsers,
  releaseName,
  setAdmin,
  setEnabled,
  setPasswordHash,
} from "../accounts/users.ts";
import { type ParsedArgs, UsageError } from "./args.ts";
import {
  expectArgs,
  formatUnix,
  nowUnix,
  openDatabaseFromArgs,
  readNewPassword,
} from "./accounts-database.ts";

export const USER_USAGE = `regauth user SUBCOMMAND [--data-dir DIR | --config FILE]

  add NAME [--admin] [--disabled] [--password-stdin]   create a user (password prompted, or from stdin)
  list [--retired]                                      list users (--retired: names of deleted users)
  passwd NAME [--password-stdin]                        set a new password
  disable NAME                                          refuse the user's logins from now on
  enable NAME                                           allow them again (also: approve a registration)
  rm NAME                                               delete the user, with their grants; the name
                                                        stays retired (nobody can take it) until release
  release NAME                                          let a deleted user's name be registered or added again
  promote NAME                                          make the user an administrator
  demote NAME                                           make the user an ordinary user again

Works offline on <data_dir>/regauth.db; safe while regauth serve runs (changes apply at once).
Names: lowercase letters, digits, '.', '_', '-', starting with a letter or digit, at most 64.
Passwords: 8 to 256 characters; never on the command line. Exit codes: 0 ok, 1 failed, 2 usage.`;

export async function userCommand(args: ParsedArgs): Promise<number> {
  const sub = args.positionals[0];
  if (sub === undefined)
    throw new UsageError(
      "which subcommand? add, list, passwd, disable, enable, promote, demote, rm or release",
    );
  switch (sub) {
    case "add": {
      const [name] = expectArgs(args, ["NAME"]) as [string];
      checkUsername(name);
      const password = await readNewPassword(args);
      checkPassword(password);
      const db = await openDatabaseFromArgs(args);
      createUser(db, {
        name,
        passwordHash: await hashNewPassword(password),
        isAdmin: args.flags.has("admin"),
        isEnabled: !args.flags.has("disabled"),
        nowUnix: nowUnix(),
      });
      process.stdout.write(`created user ${name}\n`);
      return 0;
    }
    case "list": {
      expectArgs(args, []);
      const db = await openDatabaseFromArgs(args, "read");
      if (args.flags.has("retired")) {
        const rows = listRetiredNames(db).map((r) => [r.name, formatUnix(r.retiredAtUnix)]);
        process.stdout.write(table(["NAME", "RETIRED"], rows));
        return 0;
      }
      const rows = listUsers(db).map((u) => [
        u.name,
        u.isEnabled ? "enabled" : u.isPendingApproval ? "pending approval" : "disabled",
        u.isAdmin ? "admin" : "-",
        formatUnix(u.createdAtUnix),
        formatUnix(u.lastLoginAtUnix),
      ]);
      process.stdout.write(table(["NAME", "STATE", "ROLE", "CREATED", "LAST LOGIN"], rows));
      return 0;
    }
    case "passwd": {
      const [name] = expectArgs(args, ["NAME"]) as [string];
      const password = await readNewPassword(args);
      checkPassword(password);
      const db = await openDatabaseFromArgs(args);
      setPasswordHash(db, name, await hashNewPassword(password));
      process.stdout.write(`password of ${name} changed\n`);
      return 0;
    }
    case "disable":
    case "enable": {
      const [name] = expectArgs(args, ["NAME"]) as [string];
      const db = await openDatabaseFromArgs(args);
      setEnabled(db, name, sub === "enable");
      process.stdout.write(`${sub}d ${name}\n`);
      return 0;
    }
    case "promote":
    case "demote": {
      const [name] = expectArgs(args, ["NAME"]) as [string];
      const db = await openDatabaseFromArgs(args);
      setAdmin(db, name, sub === "promote");
      process.stdout.write(
        `${name} is ${sub === "promote" ? "now an administrator" : "no longer an administrator"}\n`,
      );
      return 0;
    }
    case "rm": {
      const [name] = expectArgs(args, ["NAME"]) as [string];
      const db = await openDatabaseFromArgs(args);
      deleteUser(db, name, nowUnix());
      process.stdout.write(
        `deleted user ${name}; the name stays retired, so nobody can register it and take over ${name}/*\n` +
          `(delete the images there first, or hand them over knowingly: regauth user release ${name})\n`,
      );
      return 0;
    }
    case "release": {
      const [name] = expectArgs(args, ["NAME"]) as [string];
      const db = await openDatabaseFromArgs(args);
      releaseName(db, name);
      process.stdout.write(
        `released ${name}: it can be registered or added again, and its new owner gets ${name}/*\n`,
      );
      return 0;
    }
    default:
      throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}`);
  }
}

export function table(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  return (
    all
      .map((r) =>
        r
          .map((cell, i) => cell.padEnd(widths[i] ?? 0))
          .join("  ")
          .trimEnd(),
      )
      .join("\n") + "\n"
  );
}
