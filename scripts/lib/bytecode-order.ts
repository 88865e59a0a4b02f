/**
 * Profile-guided bytecode layout (issue 12 item 6): Bun's `--bytecode-order` places the bytecode
 * that a recorded run used together at the front of the executable's bundle, so that a serve
 * touches fewer of the executable's pages. How many fewer depends on the page cache: on a first
 * start after boot, idle VmRSS fell by ~3.5 MiB here (executable pages 42.3 -> 38.9 MiB), and by
 * ~0.4 MiB when the whole binary was already cached. https://bun.com/docs/bundler/executables
 *
 * The recorded runs are the ways regauth is used most, most important first (Bun's rule for
 * several files): serve on the embedded default with a token request, then CLI commands. They run
 * a build of this same source, so the profile always matches it; none is kept in the repository.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../test/e2e/free-port.ts";

/** Runs `binary` the recorded ways; returns the order files, serve's first. Throws when a run fails. */
export async function recordBytecodeOrder(binary: string): Promise<{ files: string[]; cleanUp(): void }> {
  const dir = mkdtempSync(join(tmpdir(), "regauth-bytecode-order-"));
  const cleanUp = () => rmSync(dir, { recursive: true, force: true });
  try {
    const dataDir = join(dir, "data");
    const serveOrder = join(dir, "serve.order");
    const cliOrder = join(dir, "cli.order");
    await recordServe(binary, dataDir, serveOrder);
    for (const [name, args] of [
      ["user", ["user", "list", "--data-dir", dataDir]],
      ["version", ["--version"]],
    ] as const)
      run(binary, [...args], { BUN_BYTECODE_ORDER_OUT: `${cliOrder}.${name}` });
    return { files: [serveOrder, `${cliOrder}.user`, `${cliOrder}.version`], cleanUp };
  } catch (error) {
    cleanUp();
    throw error;
  }
}

/** Runs `regauth ARGS`, which must succeed; returns its stdout. */
function run(binary: string, args: string[], env: Record<string, string> = {}): string {
  const proc = Bun.spawnSync([binary, ...args], {
    env: { ...process.env, ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  if (proc.exitCode !== 0)
    throw new Error(`regauth ${args.join(" ")} exited ${proc.exitCode}: ${proc.stderr}`);
  return proc.stdout.toString();
}

/**
 * A serve on the embedded default and an existing data directory, as a service starts: start-up,
 * then the token path for a login that succeeds and one that fails, then a clean stop, at which
 * Bun writes the order file.
 */
async function recordServe(binary: string, dataDir: string, orderFile: string): Promise<void> {
  run(binary, ["registry-config", "--data-dir", dataDir]); // creates the key and the database
  const password = /^password: (\S+)$/m.exec(
    run(binary, ["admin", "reset-password", "--data-dir", dataDir]),
  )?.[1];
  if (!password) throw new Error("regauth admin reset-password printed no password");
  const addr = `127.0.0.1:${await freePort()}`;
  const server = Bun.spawn([binary, "serve", "--data-dir", dataDir, "--addr", addr], {
    env: { ...process.env, BUN_BYTECODE_ORDER_OUT: orderFile },
    stdout: "ignore",
    stderr: "pipe",
    stdin: "ignore",
  });
  try {
    const deadline = Date.now() + 20_000;
    while (
      !(await fetch(`http://${addr}/healthz`).then(
        (r) => r.ok,
        () => false,
      ))
    ) {
      if (server.exitCode !== null || Date.now() > deadline)
        throw new Error(`regauth serve did not start: ${await new Response(server.stderr).text()}`);
      await Bun.sleep(20);
    }
    for (const [attempt, status] of [
      [password, 200],
      [`${password}-wrong`, 401],
    ] as const) {
      const answer = await fetch(`http://${addr}/auth?service=registry&scope=repository:app:pull,push`, {
        headers: { authorization: `Basic ${btoa(`admin:${attempt}`)}` },
      });
      if (answer.status !== status) throw new Error(`token request answered ${answer.status}, not ${status}`);
    }
  } finally {
    server.kill("SIGTERM");
    await server.exited;
  }
}
