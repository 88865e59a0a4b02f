/**
 * Registration by `docker login` (config `registration.mode`): when no authenticator knows the
 * name, `open` creates the account with the given password and `approval` creates it disabled
 * until an admin runs `regauth user enable NAME`.
 *
 * Concurrency: the name is UNIQUE and the insert runs under BEGIN IMMEDIATE, so of any number
 * of simultaneous registrations of one name exactly one creates the account; the others come
 * back as "taken" and the caller treats them as ordinary logins against the winner's hash.
 */
import type { Database } from "bun:sqlite";
import type { Credentials } from "../authn/authenticator.ts";
import type { PasswordVerifier } from "../authn/password-verifier.ts";
import { storeFault, storeUnavailable } from "../db/store-errors.ts";
import { Conflict } from "../errors.ts";
import { isNamespaceInUse } from "./permissions.ts";
import { BUILT_IN_RESERVED_NAMES, type ReservedNames } from "./reserved-names.ts";
import { createUser, hashNewPassword, passwordProblem, retiredName, usernameProblem } from "./users.ts";

export type RegistrationMode = "off" | "open" | "approval";

export type RegistrationOutcome =
  | { kind: "created"; enabled: boolean }
  /** Someone else registered (or created) the name first. */
  | { kind: "taken" }
  /** The name or password breaks the rules; `reason` is for the client. */
  | { kind: "refused"; reason: string };

/** Why the transaction gave up: the name became unavailable between the first check and the insert. */
class NameUnavailable extends Error {}

/** The refusal for a name that is reserved or a namespace in use: it does not say which. */
export const NAME_NOT_AVAILABLE = "this name is not available";

export interface Registrar {
  mode: Exclude<RegistrationMode, "off">;
  register(credentials: Credentials, nowUnix: number): Promise<RegistrationOutcome>;
}

export function databaseRegistrar(
  db: Database,
  verifier: PasswordVerifier,
  mode: Exclude<RegistrationMode, "off">,
  /** Computed once at startup (src/accounts/reserved-names.ts reservedNamesForRegistration). */
  reservedNames: ReservedNames = BUILT_IN_RESERVED_NAMES,
): Registrar {
  return {
    mode,
    register: (credentials, nowUnix) => register(db, verifier, mode, credentials, nowUnix, reservedNames),
  };
}

export async function register(
  db: Database,
  verifier: PasswordVerifier,
  mode: Exclude<RegistrationMode, "off">,
  { username, password }: Credentials,
  nowUnix: number,
  reservedNames: ReservedNames = BUILT_IN_RESERVED_NAMES,
): Promise<RegistrationOutcome> {
  const nameProblem = usernameProblem(username);
  if (nameProblem)
    return { kind: "refused", reason: `cannot register ${JSON.stringify(username)}: ${nameProblem}` };
  // The password rules first (review L7): checked after the name's availability, a short
  // password answered "not available" for reserved names and "too short" for free ones, which
  // listed the reserved names without creating anything.
  const problem = passwordProblem(password);
  if (problem) return { kind: "refused", reason: `cannot register ${username}: ${problem}` };
  const notAvailable: RegistrationOutcome = {
    kind: "refused",
    reason: `cannot register ${username}: ${NAME_NOT_AVAILABLE}`,
  };
  // Registering "team" would give a stranger admin on team/* (their personal namespace) while
  // the config ACL or database grants hand team/* to others, and registering "deploy" would
  // take the rights an ACL rule wrote for that account (src/accounts/reserved-names.ts).
  // A retired name (a deleted user's, issue 8 M1) would hand over the images left in NAME/*.
  const unavailable = () =>
    BUILT_IN_RESERVED_NAMES.has(username) ||
    reservedNames.has(username) ||
    isNamespaceInUse(db, username) ||
    retiredName(db, username) !== null;
  if (unavailable()) return notAvailable;
  // Hash outside the transaction (it is slow), under the verifier's concurrency limit.
  const passwordHash = await verifier.limited(() => hashNewPassword(password));
  const enabled = mode === "open";
  try {
    await withLockRetries(() =>
      withoutBusyWait(db, () =>
        db
          .transaction(() => {
            // Again under the write lock: while the password was hashed, the user may have been
            // deleted (the name retired), a grant on NAME/* made, or an acl_xorm reload may have named it.
            if (unavailable()) throw new NameUnavailable();
            createUser(db, { name: username, passwordHash, isPendingApproval: !enabled, nowUnix });
          })
          .immediate(),
      ),
    );
  } catch (error) {
    if (error instanceof NameUnavailable) return notAvailable;
    if (error instanceof Conflict) return { kind: "taken" };
    // Review finding 9: a lock held by another process (the CLI, a backup) is answered 503 at
    // once, and the attempt keeps its throttle charge: refunded, back-to-back registrations
    // were free, and each one waited the busy timeout on the event loop, stalling every request.
    throw storeUnavailable(error, db.filename, { keepsThrottleCharge: true }) ?? error;
  }
  return { kind: "created", enabled };
}

/** Attempts at a registration's write while the lock is taken, and the pause between two. */
const LOCK_ATTEMPTS = 12;
const LOCK_RETRY_PAUSE_MS = 20;

/**
 * Retries a write that found the lock taken, pausing without blocking the event loop. The lock
 * is taken for a few milliseconds at a time by this server's own background writer (audit and
 * last-login batches, src/db/background-writer.ts) and the webhooks' queue: a registration must
 * wait those out, not answer 503. Only a lock held for longer (another process: the CLI, a
 * backup, review finding 9) gets the 503, after about a quarter of a second.
 */
async function withLockRetries<T>(write: () => T): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return write();
    } catch (error) {
      if (attempt >= LOCK_ATTEMPTS || storeFault(error) !== "locked") throw error;
      await Bun.sleep(LOCK_RETRY_PAUSE_MS * (0.5 + Math.random()));
    }
  }
}

/**
 * Runs a write with busy_timeout 0: bun:sqlite is synchronous, so waiting for another process's
 * lock (100 ms on the request path) holds every request of the server, once per attempt
 * (finding 9). SQLITE_BUSY comes back at once instead; the connection's timeout is restored.
 */
function withoutBusyWait<T>(db: Database, write: () => T): T {
  const previous = db.query<{ timeout: number }, []>("PRAGMA busy_timeout").get()?.timeout ?? 0;
  db.run("PRAGMA busy_timeout = 0");
  try {
    return write();
  } finally {
    db.run(`PRAGMA busy_timeout = ${Math.trunc(previous)}`);
  }
}
