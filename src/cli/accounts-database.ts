/**
 * What the offline account commands share: finding the database the way `regauth serve` does
 * (--config, --data-dir, $STATE_DIRECTORY), and reading a new password without putting it on the
 * command line (argv is visible to every local user in /proc and lands in shell history).
 */
import type { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { createInterface } from "node:readline/promises";
import {
  EMBEDDED_DEFAULT_SOURCE,
  embeddedDefaultConfig,
  loadConfigFile,
  prepareConfig,
} from "../config/load.ts";
import { DatabaseError, databasePath, openDatabase } from "../db/database.ts";
import { BadRequest } from "../errors.ts";
import { type ParsedArgs, stringFlag, UsageError } from "./args.ts";
import type { SecretRequest } from "./command-io.ts";

export const DATABASE_FLAGS = ["config", "data-dir"];

export async function openDatabaseFromArgs(
  args: ParsedArgs,
  _access: "read" | "write" = "write",
): Promise<Database> {
  const configPath = stringFlag(args, "config");
  // createFiles false: a CLI command never generates signing keys; it only needs the directory.
  const options = { dataDir: stringFlag(args, "data-dir"), createFiles: false };
  const loaded =
    configPath === undefined
      ? await prepareConfig(embeddedDefaultConfig(), EMBEDDED_DEFAULT_SOURCE, options)
      : await loadConfigFile(configPath, options);
  try {
    mkdirSync(loaded.dataDir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new DatabaseError(
      `cannot create the data directory ${loaded.dataDir}: ${(error as Error).message}`,
    );
  }
  return openDatabase(databasePath(loaded.dataDir));
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
