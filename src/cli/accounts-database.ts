/**
 * What the offline account commands share: finding the database the way `regauth serve` does
 * (--config, --data-dir, $STATE_DIRECTORY), and reading a new password without putting it on the
 * command line (argv is visible to every local user in /proc and lands in shell history).
 */
import type { Database } from "bun:sqlite";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline/promises";
import {
  EMBEDDED_DEFAULT_SOURCE,
  embeddedDefaultConfig,
  type LoadedConfig,
  loadConfigFile,
  prepareConfig,
} from "../config/load.ts";
import { inspectDataDir, previousRunProblems, throwIfUntrusted } from "../db/data-dir.ts";
import { DatabaseError, databasePath, openDatabase, openDatabaseReadOnly } from "../db/database.ts";
import { describeStoreError } from "../db/store-errors.ts";
import { ensureGeneratedKey } from "../token/keys.ts";
import { BadRequest } from "../errors.ts";
import { type ParsedArgs, stringFlag, UsageError } from "./args.ts";
import type { SecretRequest } from "./command-io.ts";

export const DATABASE_FLAGS = ["config", "data-dir"];

let openedPath: string | null = null;

/** The database the running command opened, for error messages (src/main.ts). */
export function openedDatabasePath(): string | null {
  return openedPath;
}

/**
 * Opens the database the way `regauth serve` finds it. `access` "read" (list commands) opens an
 * existing database read-only, so it works on a full disk or a read-only file; "write" creates
 * it if needed. Either way the data directory must be one regauth may trust (issue 8, L4), and a
 * directory that lost its database next to the keys of a previous run is refused (issue 9, item 3).
 */
export async function openDatabaseFromArgs(
  args: ParsedArgs,
  access: "read" | "write" = "write",
): Promise<Database> {
  return (await openDataDirFromArgs(args, access)).db;
}

/** The database and the loaded config it belongs to (the management layer needs both). */
export async function openDataDirFromArgs(
  args: ParsedArgs,
  access: "read" | "write" = "write",
): Promise<{ db: Database; loaded: LoadedConfig }> {
  const configPath = stringFlag(args, "config");
  // createFiles false: the config's checks only; this function decides what to create.
  const options = { dataDir: stringFlag(args, "data-dir"), createFiles: false };
  const loaded =
    configPath === undefined
      ? await prepareConfig(embeddedDefaultConfig(), EMBEDDED_DEFAULT_SOURCE, options)
      : await loadConfigFile(configPath, options);
  const dataDir = loaded.dataDir;
  const path = databasePath(dataDir);
  openedPath = path;
  if (access === "write") {
    try {
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    } catch (error) {
      throw new DatabaseError(`cannot create the data directory ${dataDir}: ${(error as Error).message}`);
    }
  } else if (!existsSync(dataDir)) {
    throw new DatabaseError(`no data directory ${dataDir} (regauth serve or regauth user add creates it)`);
  }
  throwIfUntrusted(dataDir);
  const contents = inspectDataDir(dataDir);
  const generatesSigningKey =
    loaded.config.token.key === undefined &&
    loaded.config.token.certificate === undefined &&
    (loaded.config.server.key === undefined || loaded.config.server.certificate === undefined);
  const [lost] = previousRunProblems(contents, dataDir, false);
  if (lost !== undefined) throw new DatabaseError(lost);
  if (access === "read") return { db: openDatabaseReadOnly(path), loaded };
  if (generatesSigningKey && contents.database !== "present" && contents.signingKeyFiles.length === 0) {
    // A first command on a fresh directory (`sudo regauth user add` before the first start)
    // creates the signing key pair too, so that the directory is whole from the start and a later
    // start can tell a lost key from a first run (src/db/data-dir.ts).
    try {
      ensureGeneratedKey(dataDir);
    } catch (error) {
      throw describeStoreError(error, join(dataDir, "token.key"), "cannot create the signing key");
    }
  }
  return { db: openDatabase(path), loaded };
}

/**
 * Secrets, in order: with --password-stdin one per line of stdin (a single one is all of stdin
 * less one trailing newline, as before), else prompted on the terminal without echo.
 */
export async function readSecrets(args: ParsedArgs, requests: SecretRequest[]): Promise<string[]> {
  if (args.flags.has("password-stdin")) {
    const text = await Bun.stdin.text();
    if (requests.length === 1) return [text.replace(/\r?\n$/, "")];
    const lines = text.split(/\r?\n/);
    if (lines.length < requests.length)
      throw new UsageError(`--password-stdin: expected ${requests.length} lines on stdin`);
    return lines.slice(0, requests.length);
  }
  if (!process.stdin.isTTY)
    throw new UsageError("no terminal to prompt for the password on; use --password-stdin");
  const lines = createInterface({ input: process.stdin, output: process.stderr, terminal: false });
  // No echo while typing: the terminal's own switch, restored whatever happens.
  Bun.spawnSync(["stty", "-echo"], { stdin: "inherit" });
  try {
    const answers: string[] = [];
    for (const request of requests) {
      const first = await lines.question(request.prompt);
      process.stderr.write("\n");
      if (request.confirm) {
        const second = await lines.question("Repeat it: ");
        process.stderr.write("\n");
        if (first !== second) throw new BadRequest("the two passwords differ; nothing changed");
      }
      answers.push(first);
    }
    return answers;
  } finally {
    Bun.spawnSync(["stty", "echo"], { stdin: "inherit" });
    lines.close();
  }
}

/** A line typed on the terminal (with echo), e.g. a user name. */
export async function readLine(prompt: string): Promise<string> {
  if (!process.stdin.isTTY) throw new UsageError("no terminal to ask on; pass the value as an option");
  const lines = createInterface({ input: process.stdin, output: process.stderr, terminal: false });
  try {
    return (await lines.question(prompt)).trim();
  } finally {
    lines.close();
  }
}

export function formatUnix(seconds: number): string {
  return seconds === 0 ? "never" : new Date(seconds * 1000).toISOString().replace(/\.000Z$/, "Z");
}

export function nowUnix(): number {
  return Math.floor(Date.now() / 1000);
}

/** Checks the number of positionals after the subcommand; returns them. */
export function expectArgs(args: ParsedArgs, names: readonly string[]): string[] {
  const rest = args.positionals.slice(1);
  if (rest.length < names.length) throw new UsageError(`missing ${names.slice(rest.length).join(" ")}`);
  if (rest.length > names.length) throw new UsageError(`unexpected argument ${rest[names.length]}`);
  return rest;
}
