/**
 * `regauth login URL` and `regauth logout` (issue 10 item 5): log in once with a user name and
 * password, keep only an `api` access token named after this machine, and use it for every
 * management command until logout revokes it.
 */
import { hostname } from "node:os";
import { type ParsedArgs, stringFlag, UsageError } from "./args.ts";
import { readLine } from "./accounts-database.ts";
import type { CommandIo } from "./command-io.ts";
import {
  credentialsPath,
  deleteStoredLogin,
  readStoredLogin,
  type StoredLogin,
  writeStoredLogin,
} from "./credentials.ts";
import { parseServerUrl, RemoteClient, RemoteFailure } from "./remote-client.ts";
import type { CreatedAccessTokenView } from "./views.ts";

export const LOGIN_USAGE = `regauth login URL [--username NAME] [--password-stdin] [--insecure]

Logs in to the regauth server at URL (e.g. https://auth.example.com, with its path prefix if it
has one): asks for the user name (unless --username) and the password (or reads it from stdin
with --password-stdin), creates an access token with scope api named regauth-cli@HOSTNAME, and
stores {url, token_id, token} in $XDG_CONFIG_HOME/regauth/credentials.json (else
~/.config/regauth/credentials.json), mode 0600. The password is not stored. From then on the
management commands (user, group, perm, token, robot, audit) act on that server unless given
--data-dir or --config. A new login replaces (and revokes) the previous one.

Plain http is refused except to loopback (127.0.0.1, ::1, localhost): --insecure allows it.
Exit codes: 0 ok, 1 failed, 2 usage.`;

export const LOGOUT_USAGE = `regauth logout

Revokes the token of \`regauth login\` on its server and deletes the credentials file. When the
server cannot be reached the file is deleted anyway, and the token stays valid until revoked
there (regauth token revoke ID): exit 1 then. Exit codes: 0 ok, 1 failed, 2 usage.`;

export const LOGIN_VALUE_FLAGS = ["username"];
export const LOGIN_BOOLEAN_FLAGS = ["password-stdin", "insecure"];

export interface LoginDependencies {
  fetch?: typeof fetch;
  hostname?: string;
  env?: Record<string, string | undefined>;
  readUsername?: (prompt: string) => Promise<string>;
}

export async function loginCommand(
  args: ParsedArgs,
  io: CommandIo,
  deps: LoginDependencies = {},
): Promise<number> {
  const [urlText, ...extra] = args.positionals;
  if (urlText === undefined) throw new UsageError("which server? regauth login URL");
  if (extra.length > 0) throw new UsageError(`unexpected argument ${extra[0]}`);
  const url = parseServerUrl(urlText, { insecure: args.flags.has("insecure") });
  const path = credentialsPath(deps.env);
  let previous: StoredLogin | null = null;
  try {
    previous = readStoredLogin(path);
  } catch (error) {
    // A damaged or foreign file is what a new login replaces; it must not stand in the way.
    io.err(`regauth login: replacing ${path}: ${(error as Error).message.replace(/; remove it.*$/, "")}\n`);
  }
  const username = stringFlag(args, "username") ?? (await (deps.readUsername ?? readLine)("Username: "));
  if (username === "") throw new UsageError("no user name");
  const [password] = (await io.readSecrets(args, [{ prompt: "Password: ", confirm: false }])) as [string];
  const client = new RemoteClient(url, { kind: "basic", username, password }, deps.fetch);
  const name = `regauth-cli@${deps.hostname ?? hostname()}`.slice(0, 64);
  const create = (tokenName: string) =>
    client.createAccessToken({ name: tokenName, scopes: ["api"], repository_patterns: ["*"] });
  let token: CreatedAccessTokenView;
  try {
    token = await create(name);
  } catch (error) {
    // Logged in from this machine before (and not logged out): a second token, told apart by time.
    if (!(error instanceof RemoteFailure) || error.status !== 409) throw error;
    const stamp = new Date(io.nowMs()).toISOString().replace(/\.\d{3}Z$/, "Z");
    token = await create(`${name.slice(0, 43)} ${stamp}`);
  }
  const server = client.description;
  writeStoredLogin(path, { url: server, token_id: token.id, token: token.secret });
  io.out(
    `logged in to ${server} as ${token.owner}: token ${token.id} ${JSON.stringify(token.name)} stored in ${path}\n` +
      "(regauth logout revokes it)\n",
  );
  if (previous !== null && !(previous.url === server && previous.token_id === token.id)) {
    // The replaced login's token would otherwise live on, unused and forgotten.
    try {
      const old = new RemoteClient(
        parseServerUrl(previous.url, { insecure: true }),
        {
          kind: "bearer",
          token: previous.token,
        },
        deps.fetch,
      );
      await old.revokeAccessToken({ id: previous.token_id });
      io.out(`revoked the token of the previous login (${previous.url}, token ${previous.token_id})\n`);
    } catch (error) {
      io.err(
        `regauth login: could not revoke the previous login's token ${previous.token_id} at ${previous.url}: ${(error as Error).message}\n`,
      );
    }
  }
  return 0;
}

export async function logoutCommand(
  args: ParsedArgs,
  io: CommandIo,
  deps: LoginDependencies = {},
): Promise<number> {
  if (args.positionals.length > 0) throw new UsageError(`unexpected argument ${args.positionals[0]}`);
  const path = credentialsPath(deps.env);
  const login = readStoredLogin(path);
  if (login === null) {
    io.out(`not logged in (no ${path})\n`);
    return 0;
  }
  const client = new RemoteClient(
    parseServerUrl(login.url, { insecure: true }),
    {
      kind: "bearer",
      token: login.token,
    },
    deps.fetch,
  );
  let outcome: "revoked" | "gone" | "unreachable" = "revoked";
  let reason = "";
  try {
    await client.revokeAccessToken({ id: login.token_id });
  } catch (error) {
    if (error instanceof RemoteFailure && (error.status === 401 || error.status === 404)) outcome = "gone";
    else {
      outcome = "unreachable";
      reason = (error as Error).message;
    }
  }
  deleteStoredLogin(path);
  if (outcome === "unreachable") {
    io.err(
      `regauth logout: could not revoke token ${login.token_id}: ${reason}\n` +
        `deleted ${path} anyway; the token stays valid until revoked on the server ` +
        `(regauth token revoke ${login.token_id})\n`,
    );
    return 1;
  }
  io.out(
    outcome === "revoked"
      ? `logged out of ${login.url}: revoked token ${login.token_id}, deleted ${path}\n`
      : `logged out of ${login.url}: the token was already revoked or expired; deleted ${path}\n`,
  );
  return 0;
}
