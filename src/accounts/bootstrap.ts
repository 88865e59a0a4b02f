/**
 * First run: a database without an administrator gets one, `admin`, with a random password that
 * is printed once (by the caller, to stdout) and stored only as a hash. `regauth admin
 * reset-password` is the recovery path; it works offline on the database.
 *
 * Not when the config's `users` section has its own `admin` (docker_auth configs often do): the
 * config user authenticates first, so a database `admin` could never log in, and the name would
 * stand for two accounts. The caller then tells the operator how to create an administrator.
 */
import type { Database } from "bun:sqlite";
import {
  createUser,
  findUser,
  hashNewPassword,
  releaseName,
  retiredName,
  setAdmin,
  setEnabled,
  setPasswordHash,
} from "./users.ts";

export const ADMIN_NAME = "admin";
/** No 0/O, 1/l/I: the password is read off a terminal or a journal and typed in again. */
export const UNAMBIGUOUS_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
export const GENERATED_PASSWORD_LENGTH = 24; // 24 × log2(56) ≈ 139 bits

/** A crypto-random password; rejection sampling keeps every character equally likely. */
export function generatePassword(length = GENERATED_PASSWORD_LENGTH): string {
  const alphabet = UNAMBIGUOUS_ALPHABET;
  const limit = 256 - (256 % alphabet.length);
  let password = "";
  while (password.length < length) {
    for (const byte of crypto.getRandomValues(new Uint8Array(length * 2))) {
      if (byte < limit && password.length < length) password += alphabet[byte % alphabet.length];
    }
  }
  return password;
}

export interface AdminCredentials {
  name: string;
  password: string;
}

export type BootstrapResult =
  | { kind: "exists" }
  | { kind: "created"; credentials: AdminCredentials }
  /** No admin, and the name `admin` belongs to an ordinary user: never promote it silently. */
  | { kind: "name-taken" }
  /** No admin, and the config's `users` section defines `admin`: none created. */
  | { kind: "config-user" };

export function countAdmins(db: Database): number {
  return db.query<{ n: number }, []>("SELECT count(*) AS n FROM users WHERE is_admin = 1").get()?.n ?? 0;
}

export async function ensureAdmin(
  db: Database,
  nowUnix: number,
  /** The config's `users` section (only its names matter). */
  configUsers: Readonly<Record<string, unknown>> = {},
): Promise<BootstrapResult> {
  if (countAdmins(db) > 0) return { kind: "exists" };
  if (Object.hasOwn(configUsers, ADMIN_NAME)) return { kind: "config-user" };
  const password = generatePassword();
  const passwordHash = await hashNewPassword(password);
  // Check and insert under one write lock: two processes starting at once create one admin.
  return db
    .transaction((): BootstrapResult => {
      if (countAdmins(db) > 0) return { kind: "exists" };
      // A retired admin (deleted, issue 8 M1) is not re-created behind the admin's back either.
      if (findUser(db, ADMIN_NAME) || retiredName(db, ADMIN_NAME)) return { kind: "name-taken" };
      createUser(db, { name: ADMIN_NAME, passwordHash, isAdmin: true, nowUnix });
      return { kind: "created", credentials: { name: ADMIN_NAME, password } };
    })
    .immediate();
}

/** Gives `admin` a new random password, enables it and makes it an administrator (creating it if needed). */
export async function resetAdminPassword(db: Database, nowUnix: number): Promise<AdminCredentials> {
  const password = generatePassword();
  const passwordHash = await hashNewPassword(password);
  db.transaction(() => {
    if (findUser(db, ADMIN_NAME)) {
      setPasswordHash(db, ADMIN_NAME, passwordHash);
      setEnabled(db, ADMIN_NAME, true);
      setAdmin(db, ADMIN_NAME, true);
    } else {
      // Asking for admin back is the explicit release a retired name waits for.
      if (retiredName(db, ADMIN_NAME)) releaseName(db, ADMIN_NAME);
      createUser(db, { name: ADMIN_NAME, passwordHash, isAdmin: true, nowUnix });
    }
  }).immediate();
  return { name: ADMIN_NAME, password };
}

/** The framed message with the password; printed once, to stdout only, never logged. */
export function adminPasswordBanner(
  credentials: AdminCredentials,
  headline: string,
  dataDir: string,
): string {
  const lines = [
    headline,
    "",
    `user:     ${credentials.name}`,
    `password: ${credentials.password}`,
    "",
    "This password is shown once and stored only as a hash.",
    "Lost it? Run (offline, on this data directory):",
    `  regauth admin reset-password --data-dir ${dataDir}`,
  ];
  // Rules above and below only: `password: <value>` stays a whole line that scripts can grep.
  const rule = "=".repeat(Math.max(...lines.map((l) => l.length)));
  return `\n${rule}\n${lines.join("\n")}\n${rule}\n\n`;
}
