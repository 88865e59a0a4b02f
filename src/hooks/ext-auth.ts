/**
 * ext_auth: authentication by an external program, with docker_auth's contract
 * (authn/ext_auth.go, examples/ext_auth.sh), so existing hooks run unchanged:
 *
 * - stdin is exactly `<user> <password>`: one space, no newline, then end of file (`read u p`);
 * - exit 0 allows; stdout is empty or `{"labels": {"key": ["value", ...]}}` (other keys ignored);
 * - exit 1 denies; exit 2 means "not my user" and the next authenticator is asked;
 * - any other exit, a timeout, a signal or an overflow fails the request (503), never denies it.
 *   An exit code of 3 or more still counts as a failed login for the throttle: the program ran
 *   and judged the password (`exec htpasswd -vb` exits 3 on a mismatch, review L1). Only a run
 *   that gave no verdict (spawn error, timeout, signal, overflow, busy) is refunded.
 *
 * Differences, all fail-closed: unparseable stdout on exit 0 denies with a log line (docker_auth:
 * 500). Credentials `read u p` would split or cut are never handed to the program, because it
 * would judge different credentials than the client sent:
 * - a username with whitespace or a control character answers no-match: the program cannot
 *   know such a name, other authenticators may (registration refuses such names);
 * - a password with a control character answers deny, not no-match: the name may well be the
 *   program's user, and "no one knows this name" would let registration by `docker login`
 *   create a database account of that name with the caller's password, which then shadows the
 *   program's user (the database is asked first).
 * Empty credentials (anonymous) are no-match.
 */
import { createHmac, randomBytes } from "node:crypto";
import {
  type Authenticator,
  type AuthnContext,
  type AuthnOutcome,
  type Credentials,
  DENY,
  NO_MATCH,
} from "../authn/authenticator.ts";
import { Unavailable } from "../errors.ts";
import { log } from "../log.ts";
import { AnswerCache } from "./answer-cache.ts";
import { parseLabelsOutput } from "./hook-output.ts";
import type { ExtAuthConfig } from "./hook-config.ts";
import { type ProgramLimits, ProgramRunner, runHook, stderrExcerpt } from "./run-program.ts";

/** Whitespace would shift `read u p`; control characters (newline above all) would cut it. */
const UNSAFE_USERNAME = /[\s\p{Cc}]/u;
const UNSAFE_PASSWORD = /\p{Cc}/u;

export interface HookOptions {
  /** Overrides for tests; timeout comes from the config. */
  limits?: Partial<ProgramLimits>;
  parentEnv?: Record<string, string | undefined>;
  now?: () => number;
}

/** The runner for one hook section (ext_auth or ext_authz): its program, arguments and timeout. */
export function hookRunner(
  config: Pick<ExtAuthConfig, "command" | "args" | "timeout_seconds">,
  options: HookOptions,
): ProgramRunner {
  return new ProgramRunner(
    config.command,
    config.args,
    { ...options.limits, timeoutMs: config.timeout_seconds * 1000 },
    options.parentEnv,
  );
}

/**
 * What the remembered ext_auth answers may hold in all (issue 12 item 6): the program may print
 * 64 KiB of labels per user, so 10,000 of them would otherwise be hundreds of MiB.
 */
export const EXT_AUTH_CACHE_MAX_BYTES = 16 * 2 ** 20;

/** About what an answer holds: two bytes a character and a string's header for each label string. */
export function authnOutcomeBytes(outcome: AuthnOutcome): number {
  const STRING_BYTES = 32;
  let bytes = 64;
  if (outcome.kind !== "allow") return bytes;
  for (const [name, values] of Object.entries(outcome.labels)) {
    bytes += STRING_BYTES + 2 * name.length + 16;
    for (const value of values) bytes += STRING_BYTES + 2 * value.length;
  }
  return bytes;
}

export class ExtAuthAuthenticator implements Authenticator {
  readonly name = "ext_auth";
  readonly runner: ProgramRunner;
  private readonly cache: AnswerCache<AuthnOutcome>;
  /** Cache keys are HMACs under this key: no password, nor anything to brute-force it from, is kept. */
  private readonly hmacKey = randomBytes(32);

  constructor(config: ExtAuthConfig, options: HookOptions = {}) {
    this.runner = hookRunner(config, options);
    this.cache = new AnswerCache(config.cache_ttl_seconds, 10_000, options.now, {
      maxBytes: EXT_AUTH_CACHE_MAX_BYTES,
      sizeOf: authnOutcomeBytes,
    });
  }

  async authenticate({ username, password }: Credentials, _context?: AuthnContext): Promise<AuthnOutcome> {
    if (username === "" || password === "") return NO_MATCH;
    if (UNSAFE_USERNAME.test(username)) {
      log.info("ext_auth: credentials not passed to the program", {
        account: username,
        reason: "whitespace or control character in the username",
      });
      return NO_MATCH;
    }
    if (UNSAFE_PASSWORD.test(password)) {
      log.info("ext_auth: credentials not passed to the program; denied", {
        account: username,
        reason: "control character in the password",
      });
      return DENY;
    }
    const key = createHmac("sha256", this.hmacKey)
      .update(username)
      .update("\0")
      .update(password)
      .digest("base64");
    return this.cache.get(key, () => this.ask(username, password));
  }

  private async ask(username: string, password: string): Promise<AuthnOutcome> {
    const fields = { program: this.runner.program, account: username };
    const exit = await runHook(this.runner, "ext_auth", `${username} ${password}`, fields, password);
    switch (exit.exitCode) {
      case 0: {
        const parsed = parseLabelsOutput(exit.stdout);
        if ("problem" in parsed) {
          log.warn("ext_auth program allowed with unusable output; denied", {
            ...fields,
            problem: parsed.problem,
          });
          return DENY;
        }
        return { kind: "allow", labels: parsed.labels };
      }
      case 1:
        return DENY;
      case 2:
        return NO_MATCH;
      default:
        log.warn("ext_auth program failed", {
          ...fields,
          reason: "exit",
          exit_code: exit.exitCode,
          stderr: stderrExcerpt(exit.stderr, password),
        });
        throw new Unavailable("the authentication program failed; see the server log", {
          cause: new Error(`ext_auth exited with ${exit.exitCode}`),
          keepsThrottleCharge: true,
        });
    }
  }
}
