/**
 * The `ext_auth` and `ext_authz` config sections. `command` and `args` are docker_auth's keys
 * (examples/reference.yml); `timeout_seconds` and `cache_ttl_seconds` are regauth's additions.
 * The program is resolved to an absolute path and checked when the config loads, so a typo is a
 * startup error with its key path instead of a 503 on the first token request.
 */
import { accessSync, constants, statSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { type Static, Type } from "@sinclair/typebox";
import type { ConfigProblem } from "../errors.ts";

function hookSchema(defaultCacheTtlSeconds: number, what: string) {
  return Type.Object(
    {
      command: Type.String({
        minLength: 1,
        description:
          "The program: an absolute path, a path relative to the config file's directory, or a bare name looked up in PATH when regauth starts.",
      }),
      args: Type.Array(Type.String(), { default: [], description: "Arguments, passed verbatim (no shell)." }),
      timeout_seconds: Type.Number({
        exclusiveMinimum: 0,
        maximum: 60,
        default: 5,
        description: "regauth extension: the program and everything it started are killed after this long.",
      }),
      cache_ttl_seconds: Type.Number({
        minimum: 0,
        maximum: 3600,
        default: defaultCacheTtlSeconds,
        description: `regauth extension: how long ${what} is remembered; 0 runs the program on every request.`,
      }),
    },
    { additionalProperties: false },
  );
}

export const ExtAuthConfig = hookSchema(10, "an answer for the same user and password");
export const ExtAuthzConfig = hookSchema(0, "an answer for the same request");

export type ExtAuthConfig = Static<typeof ExtAuthConfig>;
export type ExtAuthzConfig = Static<typeof ExtAuthzConfig>;

/**
 * Replaces `hook.command` with the absolute path of an executable regular file, or adds a problem
 * at `<path>.command`. Bare names are looked up in `searchPath` (docker_auth uses exec.LookPath);
 * relative paths are taken from the config file's directory, not from wherever regauth started.
 */
export function resolveHookProgram(
  hook: { command: string },
  path: string,
  configDir: string,
  searchPath: string | undefined,
  problems: ConfigProblem[],
): void {
  const at = `${path}.command`;
  const command = hook.command;
  let program: string;
  if (command.includes("/")) {
    program = isAbsolute(command) ? command : resolve(configDir, command);
  } else {
    const found = searchPath ? Bun.which(command, { PATH: searchPath }) : null;
    if (!found) {
      problems.push({ path: at, message: `${command} not found in PATH; give an absolute path` });
      return;
    }
    program = resolve(found);
  }
  let stat: ReturnType<typeof statSync>;
  try {
    stat = statSync(program);
  } catch {
    problems.push({ path: at, message: `${program} does not exist` });
    return;
  }
  if (!stat.isFile()) {
    problems.push({ path: at, message: `${program} is not a regular file` });
    return;
  }
  try {
    accessSync(program, constants.X_OK);
  } catch {
    problems.push({ path: at, message: `${program} is not executable (chmod +x)` });
    return;
  }
  // Anyone who can rewrite the program decides who gets in.
  if ((stat.mode & 0o002) !== 0) {
    problems.push({ path: at, message: `${program} is writable by every user (chmod o-w)` });
    return;
  }
  hook.command = program;
}
