/**
 * ext_authz: authorization by an external program, once per requested resource, with
 * docker_auth's contract (authz/ext_authz.go): stdin is the JSON of docker_auth's
 * AuthRequestInfo, whose Go field names are the keys —
 * `{"Account","Type","Name","Service","IP","Actions","Labels"}` (IP a string or null);
 * exit 0 grants the requested actions, exit 1 denies them (and the chain stops), anything else
 * fails the request (503).
 *
 * Per token request, identical questions are asked once and at most
 * MAX_EXT_AUTHZ_RUNS_PER_REQUEST programs start (issue 8: 64 scopes started 64 processes);
 * the scopes beyond the limit are granted nothing, logged once per request. Answers from the
 * cache are free.
 *
 * Two extensions: on exit 0, stdout `{"actions": [...]}` grants only those of the requested
 * actions (docker_auth ignores stdout); exit 2 means "no opinion" and the next authorizer is
 * asked (docker_auth: an error). Unusable stdout on exit 0 denies, with a log line.
 */
import { createHash } from "node:crypto";
import type { AuthzRequest } from "../acl.ts";
import type { Authorizer } from "../authz/authorizer.ts";
import { Unavailable } from "../errors.ts";
import { log } from "../log.ts";
import { AnswerCache } from "./answer-cache.ts";
import { type HookOptions, hookRunner } from "./ext-auth.ts";
import type { ExtAuthzConfig } from "./hook-config.ts";
import { parseActionsOutput } from "./hook-output.ts";
import { type ProgramRunner, runHook, stderrExcerpt } from "./run-program.ts";

/**
 * A docker push asks for one or two repositories, a cross-repository mount two or three; 16
 * leaves room for clients that batch scopes while keeping one request from starting dozens of
 * processes (each a fork and exec, under the hooks' concurrency limit shared by every client).
 */
export const MAX_EXT_AUTHZ_RUNS_PER_REQUEST = 16;

/** The whole input is the key: any difference (labels, IP) is a different question. */
function questionKey(input: string): string {
  return createHash("sha256").update(input).digest("base64");
}

/** The program's stdin: docker_auth's api.AuthRequestInfo marshalled by encoding/json. */
export function extAuthzInput(request: AuthzRequest): string {
  return JSON.stringify({
    Account: request.account,
    Type: request.type,
    Name: request.name,
    Service: request.service,
    IP: request.ip?.text ?? null,
    Actions: request.actions,
    Labels: request.labels,
  });
}

export class ExtAuthzAuthorizer implements Authorizer {
  readonly name = "ext_authz";
  readonly runner: ProgramRunner;
  private readonly cache: AnswerCache<string[] | null>;

  constructor(config: ExtAuthzConfig, options: HookOptions = {}) {
    this.runner = hookRunner(config, options);
    this.cache = new AnswerCache(config.cache_ttl_seconds, 10_000, options.now);
  }

  async authorize(request: AuthzRequest): Promise<string[] | null> {
    const input = extAuthzInput(request);
    return this.cache.get(questionKey(input), () => this.ask(request, input));
  }

  /** A view for one token request: folds identical questions and caps program runs. */
  forRequest(): Authorizer {
    const asked = new Map<string, Promise<string[] | null>>();
    let runs = 0;
    let limitLogged = false;
    return {
      name: this.name,
      authorize: (request) => {
        const input = extAuthzInput(request);
        const key = questionKey(input);
        const earlier = asked.get(key);
        if (earlier) return earlier;
        if (!this.cache.has(key)) {
          if (runs >= MAX_EXT_AUTHZ_RUNS_PER_REQUEST) {
            if (!limitLogged) {
              limitLogged = true;
              log.warn("ext_authz run limit reached; the request's remaining scopes get nothing", {
                program: this.runner.program,
                account: request.account,
                limit: MAX_EXT_AUTHZ_RUNS_PER_REQUEST,
              });
            }
            return [];
          }
          runs++;
        }
        const answer = this.cache.get(key, () => this.ask(request, input));
        asked.set(key, answer);
        return answer;
      },
    };
  }

  private async ask(request: AuthzRequest, input: string): Promise<string[] | null> {
    const fields = {
      program: this.runner.program,
      account: request.account,
      scope: `${request.type}:${request.name}:${request.actions.join(",")}`,
    };
    const exit = await runHook(this.runner, "ext_authz", input, fields);
    switch (exit.exitCode) {
      case 0: {
        const parsed = parseActionsOutput(exit.stdout);
        if ("problem" in parsed) {
          log.warn("ext_authz program granted with unusable output; denied", {
            ...fields,
            problem: parsed.problem,
          });
          return [];
        }
        // Never more than was asked, whatever the program printed.
        const granted = parsed.actions === "all-requested" ? request.actions : parsed.actions;
        return request.actions.filter((action) => granted.includes(action));
      }
      case 1:
        return [];
      case 2:
        return null;
      default:
        log.warn("ext_authz program failed", {
          ...fields,
          reason: "exit",
          exit_code: exit.exitCode,
          stderr: stderrExcerpt(exit.stderr),
        });
        throw new Unavailable("the authorization program failed; see the server log", {
          cause: new Error(`ext_authz exited with ${exit.exitCode}`),
        });
    }
  }
}
