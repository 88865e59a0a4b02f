/**
 * Which back-end a management command talks to (issue 10 design §5):
 *   --data-dir or --config          → the data directory (offline, as the local administrator)
 *   --remote URL                    → that server, with $REGAUTH_TOKEN or the stored login for it
 *   a stored login (regauth login)  → that server
 *   otherwise                       → the default data directory (the behaviour before logins)
 */
import { type ParsedArgs, stringFlag, UsageError, CommandFailed } from "./args.ts";
import { openDataDirFromArgs, readSecrets } from "./accounts-database.ts";
import type { CommandIo } from "./command-io.ts";
import { credentialsPath, readStoredLogin } from "./credentials.ts";
import { LocalClient } from "./local-client.ts";
import type { ManagementClient } from "./management-client.ts";
import { parseServerUrl, RemoteClient } from "./remote-client.ts";

/** The flags every management command takes. */
export const CLIENT_VALUE_FLAGS = ["config", "data-dir", "remote", "output"];
export const CLIENT_BOOLEAN_FLAGS = ["insecure"];

export const BACKEND_HELP = `Where it acts:
  --data-dir DIR | --config FILE   offline, on that data directory's regauth.db (as today)
  --remote URL                     on that server's API, with $REGAUTH_TOKEN or your login for it
  (neither)                        on the server of your last \`regauth login\`, else offline on
                                   the default data directory
  --insecure                       allow plain http to a host that is not loopback
  --output table|json              readable table (default) or the API's JSON views`;

function sameServer(a: string, b: string): boolean {
  try {
    const [x, y] = [new URL(a), new URL(b)];
    return x.origin === y.origin && x.pathname.replace(/\/+$/, "") === y.pathname.replace(/\/+$/, "");
  } catch {
    return false;
  }
}

export function clientFromArgs(args: ParsedArgs, env = process.env): ManagementClient {
  const remote = stringFlag(args, "remote");
  const local = args.flags.has("data-dir") || args.flags.has("config");
  if (local && remote !== undefined)
    throw new UsageError("--remote and --data-dir/--config exclude each other");
  if (local) return new LocalClient((access) => openDataDirFromArgs(args, access));
  const path = credentialsPath(env);
  if (remote !== undefined) {
    const url = parseServerUrl(remote, { insecure: args.flags.has("insecure") });
    const envToken = env.REGAUTH_TOKEN;
    if (envToken !== undefined && envToken !== "")
      return new RemoteClient(url, { kind: "bearer", token: envToken });
    const login = readStoredLogin(path);
    if (login === null || !sameServer(login.url, url.href))
      throw new CommandFailed(
        `not logged in to ${url.href.replace(/\/$/, "")}: run regauth login ${remote} (or set REGAUTH_TOKEN)`,
      );
    return new RemoteClient(url, { kind: "bearer", token: login.token });
  }
  const login = readStoredLogin(path);
  if (login !== null)
    // Checked when it was stored (regauth login refuses plain http off loopback without --insecure).
    return new RemoteClient(parseServerUrl(login.url, { insecure: true }), {
      kind: "bearer",
      token: login.token,
    });
  return new LocalClient((access) => openDataDirFromArgs(args, access));
}

/** The real world: stdout, stderr, the terminal, the clock. */
export function processIo(): CommandIo {
  return {
    client: async (args) => clientFromArgs(args),
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
    readSecrets,
    nowMs: () => Date.now(),
    sleep: (ms) => Bun.sleep(ms),
  };
}
