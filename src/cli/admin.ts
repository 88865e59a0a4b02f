import { dirname } from "node:path";
/** `regauth admin reset-password`: the way back in when the admin password is lost. */
import { adminPasswordBanner, resetAdminPassword } from "../accounts/bootstrap.ts";
import { type ParsedArgs, UsageError } from "./args.ts";
import { expectArgs, nowUnix, openDatabaseFromArgs } from "./accounts-database.ts";

export const ADMIN_USAGE = `regauth admin reset-password [--data-dir DIR | --config FILE]

Gives the user "admin" a new random password (creating it, enabling it and making it an
administrator if needed) and prints the password once. Works offline on the database, also
while regauth serve runs. Exit codes: 0 ok, 1 failed, 2 usage.`;

export async function adminCommand(args: ParsedArgs): Promise<number> {
  const sub = args.positionals[0];
  if (sub !== "reset-password")
    throw new UsageError(
      sub === undefined ? "which subcommand? reset-password" : `unknown subcommand ${JSON.stringify(sub)}`,
    );
  expectArgs(args, []);
  const db = await openDatabaseFromArgs(args);
  const credentials = await resetAdminPassword(db, nowUnix());
  process.stdout.write(
    adminPasswordBanner(credentials, "regauth: new password for the administrator", dirname(db.filename)),
  );
  return 0;
}
