import { describe, expect, it } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { basic, hashPassword, makeTempDir, req, testApp, verifyToken } from "../helpers.ts";
import { childPids, eventually, openFdCount, writeHook } from "../hook-fixtures.ts";

type TokenBody = { token: string; errors?: { code: string }[] };

function tokenRequest(scope: string | null, credentials?: [string, string]): Request {
  const query = `service=registry${scope ? `&scope=${encodeURIComponent(scope)}` : ""}`;
  return req(`/auth?${query}`, credentials ? { headers: { authorization: basic(...credentials) } } : {});
}

describe("hooks through the token endpoint", () => {
  it("answers 200 concurrent token requests through ext_auth and ext_authz correctly, leaking nothing", async () => {
    // Every request runs both programs: ext_auth for the user, ext_authz for the second scope.
    const authHook = writeHook(
      'read u p\n[ "$p" = "pw-$u" ] || exit 1\nprintf \'{"labels": {"team": ["team-%s"]}}\' "$u"',
    );
    const authzHook = writeHook("exec cat > /dev/null");
    const { app, loaded } = await testApp({
      // 200 users at once from one address would exceed that address's login budget (100 in
      // flight, src/authn/throttle.ts): each comes from its own address, as real clients do.
      server: { real_ip_header: "X-Real-IP" },
      ext_auth: { command: authHook, cache_ttl_seconds: 0 },
      ext_authz: { command: authzHook },
      acl: [{ match: { name: "${labels:team}/*" }, actions: ["pull", "push"] }],
    });
    // Warm-up: the runtime opens descriptors of its own on the first spawn and the first log line.
    const fromAddress = (request: Request, address: string) => {
      request.headers.set("x-real-ip", address);
      return request;
    };
    expect(
      (await app.handle(fromAddress(tokenRequest(null, ["warmup", "pw-warmup"]), "192.0.2.1"))).status,
    ).toBe(200);
    expect((await app.handle(fromAddress(tokenRequest(null, ["warmup", "wrong"]), "192.0.2.1"))).status).toBe(
      401,
    );
    const fdsBefore = openFdCount();
    const count = 200;
    const responses = await Promise.all(
      Array.from({ length: count }, (_, i) => {
        const user = `user${i}`;
        const password = i % 10 === 9 ? "wrong" : `pw-${user}`;
        const scope = `repository:team-${user}/app:pull,push repository:shared/base:pull`;
        return app.handle(fromAddress(tokenRequest(scope, [user, password]), `198.51.100.${i}`));
      }),
    );
    for (const [i, response] of responses.entries()) {
      if (i % 10 === 9) {
        expect(response.status).toBe(401);
        continue;
      }
      expect(response.status).toBe(200);
      const { claims } = await verifyToken(((await response.json()) as TokenBody).token, loaded, "registry");
      expect(claims.sub).toBe(`user${i}`);
      expect(claims.access).toEqual([
        { type: "repository", name: `team-user${i}/app`, actions: ["pull", "push"] },
        { type: "repository", name: "shared/base", actions: ["pull"] },
      ]);
    }
    expect(await eventually(() => childPids().length === 0, 5000)).toBe(true);
    const fdsSettled = await eventually(() => {
      Bun.gc(true);
      return openFdCount() <= fdsBefore;
    }, 5000);
    expect(fdsSettled).toBe(true);
  }, 60_000);

  it("asks static users first; ext_auth only for users they do not know", async () => {
    const dir = makeTempDir();
    const asked = join(dir, "asked");
    writeFileSync(asked, "");
    const hook = writeHook('read u p\necho "$u" >> "$1"\n[ "$u" = bob ] && exit 0\nexit 2');
    const { app } = await testApp({
      users: { alice: { password: hashPassword("alice-pw") } },
      ext_auth: { command: hook, args: [asked] },
      acl: [{ match: { account: "/.+/" }, actions: ["pull"] }],
    });
    expect((await app.handle(tokenRequest(null, ["alice", "alice-pw"]))).status).toBe(200);
    expect((await app.handle(tokenRequest(null, ["alice", "wrong"]))).status).toBe(401); // a deny stops the chain
    expect((await app.handle(tokenRequest(null, ["bob", "any"]))).status).toBe(200);
    expect((await app.handle(tokenRequest(null, ["carol", "any"]))).status).toBe(401); // no-match everywhere
    expect((await app.handle(tokenRequest(null))).status).toBe(401); // anonymous never reaches the hook
    expect(readFileSync(asked, "utf8")).toBe("bob\ncarol\n");
  });

  it("answers 503, not 401, when ext_auth fails, and the body says nothing about the program", async () => {
    const hook = writeHook("echo 'internal detail' >&2; exit 7");
    const { app } = await testApp({ ext_auth: { command: hook }, acl: [] });
    const response = await app.handle(tokenRequest(null, ["bob", "pw"]));
    expect(response.status).toBe(503);
    const text = await response.text();
    expect(text).toContain("UNAVAILABLE");
    expect(text).not.toContain(hook);
    expect(text).not.toContain("internal detail");
  });

  // Review L1: `exec htpasswd -vb FILE "$u" "$p"` exits 3 on a wrong password. The program judged
  // the password, so the throttle's charge stands (still a 503: the exit code is not in the
  // contract); only a run that gave no verdict (timeout, spawn error, busy) is refunded.
  it("an exit code >= 3 keeps the throttle charge: such a hook cannot be guessed without limit", async () => {
    const hook = writeHook('IFS= read -r line; p=${line#* }; [ "$p" = right ] && exit 0; exit 3');
    const { app } = await testApp({
      server: { real_ip_header: "X-Real-IP" },
      ext_auth: { command: hook, cache_ttl_seconds: 0 },
      acl: [],
    });
    const statuses: number[] = [];
    for (let i = 0; i < 14; i++) {
      const request = tokenRequest(null, ["bob", `guess-${i}`]);
      request.headers.set("x-real-ip", "203.0.113.5");
      statuses.push((await app.handle(request)).status);
    }
    expect(statuses).toEqual([...Array(10).fill(503), ...Array(4).fill(429)]);
    const own = tokenRequest(null, ["bob", "right"]);
    own.headers.set("x-real-ip", "198.51.100.5");
    expect((await app.handle(own)).status).toBe(200);
  });

  it("a hook that gives no verdict (timeout) is refunded: an outage does not lock users out", async () => {
    const hook = writeHook("sleep 5");
    const { app } = await testApp({
      server: { real_ip_header: "X-Real-IP" },
      ext_auth: { command: hook, timeout_seconds: 0.05, cache_ttl_seconds: 0 },
      acl: [],
    });
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) {
      const request = tokenRequest(null, ["bob", `pw-${i}`]);
      request.headers.set("x-real-ip", "203.0.113.6");
      statuses.push((await app.handle(request)).status);
    }
    expect(statuses).toEqual(Array(12).fill(503));
  });

  it("asks ext_authz only when the ACL has no matching rule, and labels from ext_auth reach both", async () => {
    const dir = makeTempDir();
    const asked = join(dir, "asked");
    const authHook = writeHook('echo \'{"labels": {"group": ["builders"]}}\'');
    const authzHook = writeHook(
      [
        'input=$(cat); printf "%s\\n" "$input" >> "$1"',
        'case "$input" in *\'"Name":"open/\'*) echo \'{"actions": ["pull"]}\'; exit 0 ;; esac',
        "exit 2",
      ].join("\n"),
    );
    const { app, loaded } = await testApp({
      ext_auth: { command: authHook },
      ext_authz: { command: authzHook, args: [asked] },
      acl: [{ match: { labels: { group: "builders" }, name: "builders/*" }, actions: ["*"] }],
    });
    const response = await app.handle(
      tokenRequest(
        "repository:builders/app:pull,push repository:open/app:pull,push repository:other/app:pull",
        ["bob", "pw"],
      ),
    );
    expect(response.status).toBe(200);
    const { claims } = await verifyToken(((await response.json()) as TokenBody).token, loaded, "registry");
    expect(claims.access).toEqual([
      { type: "repository", name: "builders/app", actions: ["pull", "push"] },
      { type: "repository", name: "open/app", actions: ["pull"] },
      { type: "repository", name: "other/app", actions: [] },
    ]);
    const inputs = readFileSync(asked, "utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(inputs.map((input) => input.Name)).toEqual(["open/app", "other/app"]);
    expect(inputs[0].Labels).toEqual({ group: ["builders"] });
    expect(existsSync(asked)).toBe(true);
  });

  it("answers 503 when ext_authz fails", async () => {
    const { app } = await testApp({
      users: { alice: { password: hashPassword("pw") } },
      ext_authz: { command: writeHook("exit 5") },
      acl: [],
    });
    const response = await app.handle(tokenRequest("repository:x/y:pull", ["alice", "pw"]));
    expect(response.status).toBe(503);
  });
});
