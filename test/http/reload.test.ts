/**
 * Live reload in process (issue 12 item 1): the swap of src/reload/current-issuer.ts through the
 * real app, and reloadConfig's refusals. End to end with SIGHUP: test/e2e/reload.e2e.test.ts.
 */
import { describe, expect, it } from "bun:test";
import type { Authenticator } from "../../src/authn/authenticator.ts";
import { PasswordVerifier } from "../../src/authn/password-verifier.ts";
import type { LoadedConfig } from "../../src/config/load.ts";
import type { TokenIssuer } from "../../src/issue-token.ts";
import { databasePath, openDatabase } from "../../src/db/database.ts";
import { log } from "../../src/log.ts";
import { CurrentIssuer } from "../../src/reload/current-issuer.ts";
import { changedKeyPaths, type Reloader, reloadConfig } from "../../src/reload/reload-config.ts";
import { buildApp, buildIssuer, closeIssuer, keptAcrossReload } from "../../src/server.ts";
import { basic, hashPassword, loadTestConfig, makeTempDir, req } from "../helpers.ts";
import { writeHook } from "../hook-fixtures.ts";

const ALICE = hashPassword("alice-pw");
const BOB = hashPassword("bob-pw");

/** Before: alice may pull everything. After: alice may push too, and bob exists and may pull. */
const BEFORE = {
  users: { alice: { password: ALICE } },
  acl: [{ match: { account: "alice" }, actions: ["pull"] }],
};
const AFTER = {
  users: { alice: { password: ALICE }, bob: { password: BOB } },
  acl: [
    { match: { account: "alice" }, actions: ["pull", "push"] },
    { match: { account: "bob" }, actions: ["pull"] },
  ],
};

function tokenRequest(user: string, password: string, scope = "repository:app:pull,push"): Request {
  return req(`/auth?service=registry&scope=${encodeURIComponent(scope)}`, {
    headers: { authorization: basic(user, password) },
  });
}

async function grantedActions(response: Response): Promise<string[]> {
  expect(response.status).toBe(200);
  const { token } = (await response.json()) as { token: string };
  const claims = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString()) as {
    access: { actions: string[] }[];
  };
  return claims.access.flatMap((a) => a.actions).sort();
}

/** Holds every authentication of `inner` until `release` is called. */
function gated(inner: Authenticator) {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  let entered!: () => void;
  const arrived = new Promise<void>((resolve) => {
    entered = resolve;
  });
  const authenticator: Authenticator = {
    name: inner.name,
    async authenticate(credentials, context) {
      entered();
      await gate;
      return inner.authenticate(credentials, context);
    },
  };
  return { authenticator, release, arrived };
}

async function setUp() {
  const dataDir = makeTempDir();
  const loaded = await loadTestConfig(BEFORE, dataDir);
  if (!loaded.signingKey) throw new Error("no signing key");
  // A data directory whole as serve leaves it: keys and database (else a reload refuses it).
  openDatabase(databasePath(dataDir)).close();
  const verifier = new PasswordVerifier();
  const issuer = buildIssuer(loaded, loaded.signingKey, verifier);
  const current = new CurrentIssuer(issuer);
  const app = buildApp(loaded, current);
  const closed: TokenIssuer[] = [];
  const reloaderFor = (load: () => Promise<LoadedConfig>): Reloader => ({
    load,
    build: (next) => {
      if (!next.signingKey) throw new Error("no signing key");
      return buildIssuer(next, next.signingKey, verifier, undefined, keptAcrossReload(current.issuer));
    },
    close: async (replaced) => {
      closed.push(replaced);
    },
    current,
  });
  return { dataDir, loaded, issuer, current, app, closed, reloaderFor };
}

function captureLog() {
  const lines: string[] = [];
  const restore = log.capture(lines);
  return { lines, restore };
}

describe("live reload in process", () => {
  it("answers new requests with the new users and ACL while a request in flight finishes on the old", async () => {
    const { dataDir, loaded, issuer, current, app, closed, reloaderFor } = await setUp();
    // The request in flight is held inside authentication, on the old issuer.
    const first = issuer.authenticators[0];
    if (!first) throw new Error("no authenticator");
    const held = gated(first);
    (issuer as { authenticators: readonly Authenticator[] }).authenticators = [held.authenticator];
    const inFlight = app.handle(tokenRequest("alice", "alice-pw"));
    await held.arrived;

    const { restore } = captureLog();
    const serving = await reloadConfig(
      loaded,
      reloaderFor(() => loadTestConfig(AFTER, dataDir)),
    ).finally(restore);
    expect(serving).not.toBe(loaded);
    expect(current.issuer).not.toBe(issuer);

    // New requests: the new ACL for alice, the new user bob.
    expect(await grantedActions(await app.handle(tokenRequest("alice", "alice-pw")))).toEqual([
      "pull",
      "push",
    ]);
    expect(await grantedActions(await app.handle(tokenRequest("bob", "bob-pw")))).toEqual(["pull"]);
    // The replaced issuer is not closed while its request is in flight.
    await Bun.sleep(20);
    expect(closed).toEqual([]);

    held.release();
    // The old request was decided by the old ACL: pull only.
    expect(await grantedActions(await inFlight)).toEqual(["pull"]);
    await Bun.sleep(0);
    expect(closed).toEqual([issuer]);
  });

  it("takes up an ext_auth hook and ext_authz added by a reload", async () => {
    const { dataDir, loaded, app, reloaderFor } = await setUp();
    const authHook = writeHook('read u p\n[ "$u" = carol ] && [ "$p" = carol-pw ] || exit 1');
    const authzHook = writeHook("exec cat > /dev/null"); // exit 0: grants what was asked
    expect((await app.handle(tokenRequest("carol", "carol-pw"))).status).toBe(401);
    const withHooks = { ...BEFORE, ext_auth: { command: authHook }, ext_authz: { command: authzHook } };
    const { restore } = captureLog();
    await reloadConfig(
      loaded,
      reloaderFor(() => loadTestConfig(withHooks, dataDir)),
    ).finally(restore);
    expect(await grantedActions(await app.handle(tokenRequest("carol", "carol-pw")))).toEqual([
      "pull",
      "push",
    ]);
  });

  it("keeps the failed-login throttle across a reload", async () => {
    const { dataDir, loaded, issuer, current, reloaderFor } = await setUp();
    const { restore } = captureLog();
    await reloadConfig(
      loaded,
      reloaderFor(() => loadTestConfig(AFTER, dataDir)),
    ).finally(restore);
    expect(current.issuer).not.toBe(issuer);
    expect(current.issuer.throttle).toBe(issuer.throttle as NonNullable<TokenIssuer["throttle"]>);
    expect(current.issuer.verifier).toBe(issuer.verifier);
  });

  it("refuses a broken config, logs every problem with its key path, and keeps serving the old one", async () => {
    const { dataDir, loaded, issuer, current, app, closed, reloaderFor } = await setUp();
    const broken = {
      users: { alice: { password: ALICE, colour: "blue" } },
      acl: [{ match: { account: "/[/" }, actions: ["pull"] }],
      token: { issuer: "test-issuer", expiration: -5 },
    };
    const { lines, restore } = captureLog();
    const serving = await reloadConfig(
      loaded,
      reloaderFor(() => loadTestConfig(broken, dataDir)),
    ).finally(restore);
    expect(serving).toBe(loaded);
    expect(current.issuer).toBe(issuer);
    expect(closed).toEqual([]);
    const refused = lines.find((line) => line.includes('msg="config reload refused"'));
    expect(refused).toBeDefined();
    for (const path of ["users.alice.colour", "acl.0.match.account", "token.expiration"])
      expect(refused).toContain(path);
    expect(lines.some((line) => line.includes("config reloaded"))).toBe(false);
    expect(await grantedActions(await app.handle(tokenRequest("alice", "alice-pw")))).toEqual(["pull"]);
    expect((await app.handle(tokenRequest("bob", "bob-pw"))).status).toBe(401);
  });

  it("refuses a config whose back-end cannot be built, and keeps serving", async () => {
    const { dataDir, loaded, issuer, current, reloaderFor } = await setUp();
    const reloader = reloaderFor(() => loadTestConfig(AFTER, dataDir));
    reloader.build = () => {
      throw new Error("cannot set up ldap_auth");
    };
    const { lines, restore } = captureLog();
    expect(await reloadConfig(loaded, reloader).finally(restore)).toBe(loaded);
    expect(current.issuer).toBe(issuer);
    expect(lines.find((line) => line.includes("config reload refused"))).toContain("cannot set up ldap_auth");
  });

  it("keeps listener and data directory keys at their running values, with a warning naming each", async () => {
    const { dataDir, loaded, reloaderFor } = await setUp();
    const moved = {
      ...AFTER,
      server: { addr: "127.0.0.1:6001", path_prefix: "/x" },
      api: { enabled: false },
    };
    const { lines, restore } = captureLog();
    const serving = await reloadConfig(
      loaded,
      reloaderFor(() => loadTestConfig(moved, dataDir)),
    ).finally(restore);
    expect(serving.config.server).toEqual(loaded.config.server);
    expect(serving.config.api).toEqual(loaded.config.api);
    expect(Object.keys(serving.config.users ?? {})).toEqual(["alice", "bob"]);
    const warnings = lines.filter((line) => line.includes("needs a restart"));
    expect(warnings.map((line) => /key=(\S+)/.exec(line)?.[1]).sort()).toEqual([
      "api.enabled",
      "server.addr",
      "server.path_prefix",
    ]);
    expect(lines.find((line) => line.includes('msg="config reloaded"'))).toContain("needs_restart=");
  });
});

describe("closeIssuer", () => {
  it("closes every part that holds connections, even when one fails to close", async () => {
    const { issuer } = await setUp();
    const closed: string[] = [];
    const part = (name: string, close?: () => void | Promise<void>) => ({
      name,
      authenticate: () => ({ kind: "unknown" as const }),
      authorize: () => null,
      ...(close ? { close } : {}),
    });
    const withParts = {
      ...issuer,
      authenticators: [
        part("ldap", () => void closed.push("ldap")),
        part("ext_auth"),
        part("xorm", async () => {
          throw new Error("already closed");
        }),
      ],
      authorizers: [part("acl_xorm", async () => void closed.push("acl_xorm"))],
    } as unknown as TokenIssuer;
    await closeIssuer(withParts);
    expect(closed.sort()).toEqual(["acl_xorm", "ldap"]);
  });
});

describe("changedKeyPaths", () => {
  const base = {
    server: { addr: "a:1", hsts: false },
    api: { enabled: true },
    audit: { token_decisions: "all" },
  };
  it.each([
    ["nothing changed", base, []],
    ["server.addr", { ...base, server: { addr: "b:2", hsts: false } }, ["server.addr"]],
    ["a key added", { ...base, server: { ...base.server, certificate: "/c.pem" } }, ["server.certificate"]],
    ["data_dir", { ...base, data_dir: "/elsewhere" }, ["data_dir"]],
    ["audit.token_decisions reloads", { ...base, audit: { token_decisions: "none" } }, []],
    ["users are not restart-only", { ...base, users: { x: {} } }, []],
  ])("%s", (_name, after, expected) => {
    expect(
      changedKeyPaths(base as unknown as LoadedConfig["config"], after as unknown as LoadedConfig["config"]),
    ).toEqual(expected);
  });
});
