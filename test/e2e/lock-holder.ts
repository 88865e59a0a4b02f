/**
 * The scenario both lock tests share (issue 9 item 2, review finding 9): a regauth with approval
 * registration and a public namespace, and a second process holding the database's write lock,
 * as the offline CLI or a backup would.
 */
import { expect } from "bun:test";
import { join } from "node:path";
import { ensureBinary, type Regauth, run, startRegauth } from "./harness.ts";

/** A running regauth whose anonymous pulls of public/* need no write. */
export async function startRegauthWithPublicGrant(): Promise<Regauth> {
  const regauth = await startRegauth({
    configYaml: `server: {addr: "127.0.0.1:{{PORT}}"}\ntoken: {issuer: lock-test}\nregistration: {mode: approval}\n`,
  });
  const cli = await run([
    ensureBinary(),
    "perm",
    "grant",
    "*",
    "public/*",
    "read",
    "--data-dir",
    regauth.dataDir,
  ]);
  expect(cli.exitCode).toBe(0);
  return regauth;
}

/** Another process holding BEGIN IMMEDIATE on the data directory's database for `holdMs`; resolves once it holds it. */
export async function holdWriteLock(dataDir: string, holdMs: number): Promise<Bun.Subprocess> {
  const holder = Bun.spawn(
    [
      "bun",
      "-e",
      `const { Database } = require("bun:sqlite"); const db = new Database(${JSON.stringify(join(dataDir, "regauth.db"))}); db.run("BEGIN IMMEDIATE"); console.log("locked"); Bun.sleepSync(${holdMs}); db.run("ROLLBACK");`,
    ],
    { stdout: "pipe", stderr: "inherit" },
  );
  const reader = holder.stdout.getReader();
  expect(new TextDecoder().decode((await reader.read()).value)).toContain("locked");
  reader.releaseLock();
  return holder;
}
