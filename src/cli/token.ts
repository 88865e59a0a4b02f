/**
 * `regauth token create|list|revoke` and `regauth robot ...`: access tokens for people and robot
 * accounts for CI (issue 10 items 3 and 4), written once over ManagementClient. A secret is
 * printed once, with the `docker login` command that uses it.
 */
import { type ParsedArgs, stringFlag, UsageError } from "./args.ts";
import { expectArgs } from "./accounts-database.ts";
import { BACKEND_HELP } from "./backend.ts";
import type { CommandIo } from "./command-io.ts";
import type { NewTokenInput } from "./management-client.ts";
import { parseDateTime } from "./times.ts";
import { cell, json, outputFormat, shortTime, table } from "./output.ts";
import type { AccessTokenView, CreatedAccessTokenView, RobotView, TokenScope } from "./views.ts";

const SCOPES: readonly TokenScope[] = ["pull", "push", "delete", "api"];

const TOKEN_OPTIONS = `  --scopes LIST        comma-separated: pull, push (implies pull), delete (implies push),
                       api (the management API); default pull
  --repositories LIST  comma-separated repository patterns (team/*, team/app, *); default *
                       (the token never has more rights than its owner has now)
  --expires WHEN       30d, 12h, 2027-01-31 or 2027-01-31T12:00:00Z; default never (or the
                       server's access_tokens.max_lifetime_days)
  --registry HOST      the registry's host name, for the docker login line printed with the secret`;

export const TOKEN_USAGE = `regauth token SUBCOMMAND [--remote URL | --data-dir DIR | --config FILE] [--output json]

  create NAME [--owner USER] [options]   create an access token (yours, or USER's for an administrator);
                                         the secret is printed once
  list [--owner USER]                    list tokens (yours, or USER's; administrators: everyone's)
  revoke ID                              revoke a token at once

Options of create:
${TOKEN_OPTIONS}

A token works as the password of docker login, skopeo, podman and CI with any user name.
Exit codes: 0 ok, 1 failed, 2 usage.

${BACKEND_HELP}`;

export const TOKEN_VALUE_FLAGS = [
  "owner",
  "scopes",
  "repositories",
  "expires",
  "registry",
  "namespace",
  "description",
];

function list(text: string, what: string): string[] {
  const items = text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (items.length === 0) throw new UsageError(`${what} needs at least one value`);
  return items;
}

/** --expires: a duration from now (30d, 12h, 90m) or an absolute date/time, as RFC 3339. */
export function parseExpiry(text: string, nowMs: number): string {
  const relative = /^(\d{1,6})([dhm])$/.exec(text);
  if (relative) {
    const unitMs = { d: 86_400_000, h: 3_600_000, m: 60_000 }[relative[2] as "d" | "h" | "m"];
    const amount = Number(relative[1]);
    if (amount === 0) throw new UsageError("--expires must be in the future");
    return new Date(nowMs + amount * unitMs).toISOString().replace(/\.000Z$/, "Z");
  }
  const date = parseDateTime(text);
  if (date !== null) {
    if (date.getTime() <= nowMs) throw new UsageError(`--expires ${text} is in the past`);
    return date.toISOString().replace(/\.000Z$/, "Z");
  }
  throw new UsageError(
    `--expires must be like 30d, 12h, 2027-01-31 or 2027-01-31T12:00:00Z, not ${JSON.stringify(text)}`,
  );
}

function tokenInput(args: ParsedArgs, name: string, nowMs: number): NewTokenInput {
  const scopes = list(stringFlag(args, "scopes") ?? "pull", "--scopes");
  for (const scope of scopes)
    if (!(SCOPES as readonly string[]).includes(scope))
      throw new UsageError(`--scopes: ${JSON.stringify(scope)} is not one of ${SCOPES.join(", ")}`);
  const input: NewTokenInput = {
    name,
    scopes: [...new Set(scopes)] as TokenScope[],
    repository_patterns: list(stringFlag(args, "repositories") ?? "*", "--repositories"),
  };
  const expires = stringFlag(args, "expires");
  if (expires !== undefined) input.expires_at = parseExpiry(expires, nowMs);
  return input;
}

function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`;
}

/** What a created token prints: once, with how to use it. */
export function createdTokenText(token: CreatedAccessTokenView, registry: string | undefined): string {
  const registryHost = registry ?? "REGISTRY_HOST";
  return (
    `created token ${token.id} ${JSON.stringify(token.name)} for ${token.owner}: ` +
    `${token.scopes.join(",")} on ${token.repository_patterns.join(",")}, expires ${shortTime(token.expires_at)}\n\n` +
    `secret (shown only now; store it where CI keeps secrets):\n\n  ${token.secret}\n\n` +
    `log in with it (any user name works; the token decides who it is), pasting the secret at the prompt:\n\n` +
    `  docker login ${shellQuote(registryHost)} --username ${shellQuote(token.owner)}\n\n` +
    `in CI, with the secret in the variable REGAUTH_TOKEN:\n\n` +
    `  echo "$REGAUTH_TOKEN" | docker login ${shellQuote(registryHost)} --username ${shellQuote(token.owner)} --password-stdin\n` +
    (registry === undefined
      ? "\n(REGISTRY_HOST: your registry's host name; --registry HOST fills it in)\n"
      : "")
  );
}

export function tokenTable(tokens: AccessTokenView[]): string {
  return table(
    ["ID", "OWNER", "NAME", "SCOPES", "REPOSITORIES", "CREATED", "EXPIRES", "LAST USED", "FROM"],
    tokens.map((t) => [
      String(t.id),
      cell(t.owner),
      cell(t.name),
      t.scopes.join(","),
      cell(t.repository_patterns.join(",")),
      shortTime(t.created_at),
      shortTime(t.expires_at),
      shortTime(t.last_used_at),
      cell(t.last_used_ip) || "-",
    ]),
  );
}

function parseId(text: string): number {
  if (!/^[1-9]\d{0,15}$/.test(text))
    throw new UsageError(`ID must be a token number (regauth token list), not ${JSON.stringify(text)}`);
  return Number(text);
}

export async function tokenCommand(args: ParsedArgs, io: CommandIo): Promise<number> {
  const sub = args.positionals[0];
  if (sub === undefined) throw new UsageError("which subcommand? create, list or revoke");
  const format = outputFormat(args);
  switch (sub) {
    case "create": {
      const [name] = expectArgs(args, ["NAME"]) as [string];
      const input = tokenInput(args, name, io.nowMs());
      const owner = stringFlag(args, "owner");
      const client = await io.client(args);
      const token = await client.createAccessToken(owner === undefined ? input : { ...input, owner });
      io.out(format === "json" ? json(token) : createdTokenText(token, stringFlag(args, "registry")));
      return 0;
    }
    case "list": {
      expectArgs(args, []);
      const owner = stringFlag(args, "owner");
      const tokens = await (await io.client(args)).listAccessTokens(owner === undefined ? {} : { owner });
      io.out(format === "json" ? json(tokens) : tokenTable(tokens));
      return 0;
    }
    case "revoke": {
      const [idText] = expectArgs(args, ["ID"]) as [string];
      const token = await (await io.client(args)).revokeAccessToken({ id: parseId(idText) });
      io.out(
        format === "json"
          ? json(token)
          : `revoked token ${token.id} ${JSON.stringify(token.name)} of ${token.owner}\n`,
      );
      return 0;
    }
    default:
      throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}`);
  }
}

export const ROBOT_USAGE = `regauth robot SUBCOMMAND [--remote URL | --data-dir DIR | --config FILE] [--output json]

  create NAME [--namespace NS] [--description TEXT]
                              create a robot account: NS+NAME for namespace NS (its admins
                              manage it), regauth+NAME without --namespace (administrators)
  list [--namespace NS]       list robot accounts
  rm NAME                     delete one (NAME is the full name, e.g. team+ci); its tokens go too
  token create ROBOT TOKEN_NAME [options]
                              a token for the robot; the secret is printed once

Robots have no password: their only credentials are tokens. Grant them rights as usual:
regauth perm grant team+ci 'team/*' write

Options of token create:
${TOKEN_OPTIONS}

Exit codes: 0 ok, 1 failed, 2 usage.

${BACKEND_HELP}`;

export function robotTable(robots: RobotView[]): string {
  return table(
    ["NAME", "OWNER", "STATE", "CREATED", "LAST USED", "DESCRIPTION"],
    robots.map((r) => [
      cell(r.name),
      r.owner_namespace === null ? "(registry)" : cell(r.owner_namespace),
      r.is_enabled ? "enabled" : "disabled",
      shortTime(r.created_at),
      shortTime(r.last_login_at),
      cell(r.description) || "-",
    ]),
  );
}

export async function robotCommand(args: ParsedArgs, io: CommandIo): Promise<number> {
  const sub = args.positionals[0];
  if (sub === undefined) throw new UsageError("which subcommand? create, list, rm or token");
  const format = outputFormat(args);
  const namespace = stringFlag(args, "namespace");
  switch (sub) {
    case "create": {
      const [name] = expectArgs(args, ["NAME"]) as [string];
      const description = stringFlag(args, "description");
      const robot = await (await io.client(args)).createRobot({
        name,
        ...(namespace === undefined ? {} : { namespace }),
        ...(description === undefined ? {} : { description }),
      });
      io.out(
        format === "json"
          ? json(robot)
          : `created robot ${robot.name}; give it rights (regauth perm grant ${robot.name} PATTERN LEVEL) ` +
              `and a token (regauth robot token create ${robot.name} ci)\n`,
      );
      return 0;
    }
    case "list": {
      expectArgs(args, []);
      const robots = await (await io.client(args)).listRobots(namespace === undefined ? {} : { namespace });
      io.out(format === "json" ? json(robots) : robotTable(robots));
      return 0;
    }
    case "rm": {
      const [name] = expectArgs(args, ["NAME"]) as [string];
      const robot = await (await io.client(args)).deleteRobot({ name });
      io.out(format === "json" ? json(robot) : `deleted robot ${robot.name} and its tokens\n`);
      return 0;
    }
    case "token": {
      const [action, robot, name] = args.positionals.slice(1);
      if (action !== "create") throw new UsageError("which? regauth robot token create ROBOT TOKEN_NAME");
      if (robot === undefined || name === undefined) throw new UsageError("missing ROBOT TOKEN_NAME");
      if (args.positionals.length > 4) throw new UsageError(`unexpected argument ${args.positionals[4]}`);
      const input = tokenInput(args, name, io.nowMs());
      const token = await (await io.client(args)).createRobotToken({ ...input, robot });
      io.out(format === "json" ? json(token) : createdTokenText(token, stringFlag(args, "registry")));
      return 0;
    }
    default:
      throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}`);
  }
}
