import { afterEach, describe, expect, it } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { AuthzRequest } from "../../src/acl.ts";
import { type Authorizer, authorize } from "../../src/authz/authorizer.ts";
import { Unavailable } from "../../src/errors.ts";
import { ExtAuthzAuthorizer, MAX_EXT_AUTHZ_RUNS_PER_REQUEST } from "../../src/hooks/ext-authz.ts";
import type { ExtAuthzConfig } from "../../src/hooks/hook-config.ts";
import { parseIp } from "../../src/ip.ts";
import { log } from "../../src/log.ts";
import { parseScopes } from "../../src/scope.ts";
import { makeTempDir } from "../helpers.ts";
import { writeHook } from "../hook-fixtures.ts";

function hookConfig(command: string, extra: Partial<ExtAuthzConfig> = {}): ExtAuthzConfig {
  return { command, args: [], timeout_seconds: 5, cache_ttl_seconds: 0, ...extra };
}

function request(extra: Partial<AuthzRequest> = {}): AuthzRequest {
  return {
    account: "alice",
    type: "repository",
    name: "team/app",
    service: "registry",
    ip: { text: "10.0.0.5", bytes: parseIp("10.0.0.5") as Uint8Array },
    actions: ["pull", "push"],
    labels: { group: ["dev", "ops"] },
    ...extra,
  };
}

let restoreLog: (() => void) | null = null;
afterEach(() => {
  restoreLog?.();
  restoreLog = null;
});

describe("ext_authz: input", () => {
  it("sends docker_auth's AuthRequestInfo keys, in its order, with the request's values", async () => {
    const dir = makeTempDir();
    const hook = writeHook('cat > "$1"; exit 0');
    const authz = new ExtAuthzAuthorizer({ ...hookConfig(hook), args: [join(dir, "stdin")] });
    await authz.authorize(request());
    const text = readFileSync(join(dir, "stdin"), "utf8");
    expect(text.endsWith("\n")).toBe(false);
    const sent = JSON.parse(text);
    expect(Object.keys(sent)).toEqual(["Account", "Type", "Name", "Service", "IP", "Actions", "Labels"]);
    expect(sent).toEqual({
      Account: "alice",
      Type: "repository",
      Name: "team/app",
      Service: "registry",
      IP: "10.0.0.5",
      Actions: ["pull", "push"],
      Labels: { group: ["dev", "ops"] },
    });
  });

  it("sends IP null when the client address is unknown, and hostile names as JSON data", async () => {
    const dir = makeTempDir();
    const hook = writeHook('cat > "$1"; exit 0');
    const authz = new ExtAuthzAuthorizer({ ...hookConfig(hook), args: [join(dir, "stdin")] });
    const name = 'a"b\\c/$(id);`x`\n';
    await authz.authorize(request({ ip: null, name, account: "" }));
    const sent = JSON.parse(readFileSync(join(dir, "stdin"), "utf8"));
    expect(sent.IP).toBeNull();
    expect(sent.Name).toBe(name);
    expect(sent.Account).toBe("");
  });
});

describe("ext_authz: exit codes and output", () => {
  it.each([
    ["exit 0", ["pull", "push"]],
    ["echo; exit 0", ["pull", "push"]],
    ['echo \'{"actions": ["pull"]}\'', ["pull"]],
    ["echo '{\"actions\": []}'", []],
    // Never more than was asked, whatever the program prints; "*" is not a wildcard here.
    ['echo \'{"actions": ["push", "pull", "delete", "*"]}\'', ["pull", "push"]],
    ['echo \'{"actions": ["*"]}\'', []],
    ["exit 1", []],
    ["exit 2", null],
  ])("%s → %j", async (body, expected) => {
    expect(await new ExtAuthzAuthorizer(hookConfig(writeHook(body))).authorize(request())).toEqual(
      expected as never,
    );
  });

  it.each([
    ["granted"],
    ['{"action": ["pull"]}'],
    ['{"actions": "pull"}'],
    ['{"actions": [1]}'],
    ['["pull"]'],
    ["null"],
  ])("denies on exit 0 with unusable stdout %s, and logs why", async (stdout) => {
    const lines: string[] = [];
    restoreLog = log.capture(lines);
    const hook = writeHook(`cat <<'EOF'\n${stdout}\nEOF\nexit 0`);
    expect(await new ExtAuthzAuthorizer(hookConfig(hook)).authorize(request())).toEqual([]);
    expect(lines.some((line) => line.includes("unusable output"))).toBe(true);
  });

  it.each([["exit 3"], ["exit 255"], ["kill -9 $$"], ["yes"]])("fails (503): %s", async (body) => {
    const authz = new ExtAuthzAuthorizer(hookConfig(writeHook(body)));
    await expect(authz.authorize(request())).rejects.toBeInstanceOf(Unavailable);
  });

  it("fails (503) at the timeout", async () => {
    const authz = new ExtAuthzAuthorizer(hookConfig(writeHook("sleep 60"), { timeout_seconds: 0.2 }));
    await expect(authz.authorize(request())).rejects.toBeInstanceOf(Unavailable);
  });
});

describe("ext_authz in the chain", () => {
  const fixed = (name: string, answer: string[] | null): Authorizer => ({ name, authorize: () => answer });
  const principal = { account: "alice", labels: {}, isAnonymous: false, authenticator: "test" };
  const scopes = parseScopes(["repository:team/app:pull,push"]);

  it("exit 2 falls through to the next authorizer; exit 1 stops the chain", async () => {
    const noMatch = new ExtAuthzAuthorizer(hookConfig(writeHook("exit 2")));
    const deny = new ExtAuthzAuthorizer(hookConfig(writeHook("exit 1")));
    const grants = await authorize([noMatch, fixed("next", ["pull"])], principal, scopes, "registry", null);
    expect(grants[0]?.actions).toEqual(["pull"]);
    const denied = await authorize(
      [deny, fixed("next", ["pull", "push"])],
      principal,
      scopes,
      "registry",
      null,
    );
    expect(denied[0]?.actions).toEqual([]);
  });
});

describe("ext_authz: cache", () => {
  function countingHook(body: string) {
    const counter = join(makeTempDir(), "runs");
    writeFileSync(counter, "");
    const hook = writeHook(`echo run >> "$1"\n${body}`);
    return { hook, counter, runs: () => readFileSync(counter, "utf8").split("\n").length - 1 };
  }

  it("is off by default: every request runs the program", async () => {
    const { hook, counter, runs } = countingHook("exit 0");
    const authz = new ExtAuthzAuthorizer({ ...hookConfig(hook), args: [counter] });
    await authz.authorize(request());
    await authz.authorize(request());
    expect(runs()).toBe(2);
  });

  it("with a TTL, remembers per exact request content", async () => {
    const { hook, counter, runs } = countingHook("exit 0");
    const authz = new ExtAuthzAuthorizer({ ...hookConfig(hook, { cache_ttl_seconds: 30 }), args: [counter] });
    await authz.authorize(request());
    await authz.authorize(request());
    expect(runs()).toBe(1);
    await authz.authorize(request({ labels: { group: ["dev"] } }));
    await authz.authorize(request({ ip: null }));
    await authz.authorize(request({ actions: ["pull"] }));
    expect(runs()).toBe(4);
  });
});

describe("ext_authz: program runs per token request (issue 8)", () => {
  const principal = { account: "alice", labels: {}, isAnonymous: false, authenticator: "test" };
  function countingAuthz(extra: Partial<ExtAuthzConfig> = {}) {
    const counter = join(makeTempDir(), "runs");
    writeFileSync(counter, "");
    const hook = writeHook('echo run >> "$1"\nexit 0');
    const authz = new ExtAuthzAuthorizer({ ...hookConfig(hook, extra), args: [counter] });
    return { authz, runs: () => readFileSync(counter, "utf8").split("\n").length - 1 };
  }
  const manyScopes = parseScopes(
    Array.from({ length: 64 }, (_, i) => `repository:team/app-${String(i).padStart(2, "0")}:pull`),
  );

  it(`64 scopes start at most ${MAX_EXT_AUTHZ_RUNS_PER_REQUEST} programs; the rest get nothing, logged once`, async () => {
    const lines: string[] = [];
    restoreLog = log.capture(lines);
    const { authz, runs } = countingAuthz();
    const grants = await authorize([authz], principal, manyScopes, "registry", null);
    expect(runs()).toBe(MAX_EXT_AUTHZ_RUNS_PER_REQUEST);
    expect(grants).toHaveLength(64);
    const granted = grants.filter((g) => g.actions.length > 0);
    expect(granted.map((g) => g.name)).toEqual(
      manyScopes.slice(0, MAX_EXT_AUTHZ_RUNS_PER_REQUEST).map((s) => s.name),
    );
    expect(lines.filter((line) => line.includes("ext_authz run limit"))).toHaveLength(1);
    // The limit is per request: the next one gets its own runs.
    await authorize([authz], principal, manyScopes.slice(0, 2), "registry", null);
    expect(runs()).toBe(MAX_EXT_AUTHZ_RUNS_PER_REQUEST + 2);
  });

  it("identical questions in one request run the program once", async () => {
    const { authz, runs } = countingAuthz();
    const one = parseScopes(["repository:team/app:pull"])[0] as (typeof manyScopes)[number];
    const grants = await authorize([authz], principal, [one, { ...one }, { ...one }], "registry", null);
    expect(runs()).toBe(1);
    expect(grants.map((g) => g.actions)).toEqual([["pull"], ["pull"], ["pull"]]);
  });

  it("cached answers do not count against the limit", async () => {
    const { authz, runs } = countingAuthz({ cache_ttl_seconds: 30 });
    await authorize(
      [authz],
      principal,
      manyScopes.slice(0, MAX_EXT_AUTHZ_RUNS_PER_REQUEST),
      "registry",
      null,
    );
    const grants = await authorize([authz], principal, manyScopes, "registry", null);
    expect(runs()).toBe(2 * MAX_EXT_AUTHZ_RUNS_PER_REQUEST);
    expect(grants.filter((g) => g.actions.length > 0)).toHaveLength(2 * MAX_EXT_AUTHZ_RUNS_PER_REQUEST);
  });
});
