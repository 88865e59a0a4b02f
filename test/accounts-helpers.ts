/** Fixtures for the accounts tests: a migrated database in a temp dir, an app wired to it. */
import type { Database } from "bun:sqlite";
import { join } from "node:path";
import { PasswordVerifier } from "../src/authn/password-verifier.ts";
import { databasePath, openDatabase } from "../src/db/database.ts";
import { buildApp, buildIssuer } from "../src/server.ts";
import { loadTestConfig, makeTempDir } from "./helpers.ts";

export function tempDatabase(): { db: Database; path: string; dataDir: string } {
  const dataDir = makeTempDir("regauth-db-");
  const path = databasePath(dataDir);
  return { db: openDatabase(path), path, dataDir };
}

/** An in-process app with the accounts database in its data directory. */
export async function testAccountsApp(config: Record<string, unknown> = {}) {
  const dataDir = makeTempDir("regauth-accounts-");
  const loaded = await loadTestConfig(config, dataDir);
  if (!loaded.signingKey) throw new Error("no signing key");
  const db = openDatabase(databasePath(dataDir));
  const verifier = new PasswordVerifier();
  const issuer = buildIssuer(loaded, loaded.signingKey, verifier, db);
  await issuer.failureLatency?.calibrated; // its hash checks are not the test's (test/helpers.ts)
  return { app: buildApp(loaded, issuer), issuer, loaded, verifier, db, dataDir };
}

/** Runs the CLI from source in another process (as an admin would, next to a running server). */
export async function cli(args: string[], stdin?: string) {
  const proc = Bun.spawn(["bun", join(import.meta.dir, "../src/main.ts"), ...args], {
    stdin: stdin === undefined ? "ignore" : new Blob([stdin]),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, exitCode] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { stdout, stderr, exitCode };
}

/** A fast bcrypt hash for fixtures (the server accepts bcrypt and argon2id). */
export function quickHash(password: string): string {
  return Bun.password.hashSync(password, { algorithm: "bcrypt", cost: 4 });
}
