/**
 * Authentication behaviour behind the token endpoint: unknown users pay a hash (timing parity,
 * asserted structurally rather than by wall clock), the verified-credential cache, failures that
 * are not denials (500 without details), and log lines that clients cannot forge.
 */
import { afterEach, describe, expect, it, spyOn } from "bun:test";
import type { Authenticator } from "../../src/authn/authenticator.ts";
import { log } from "../../src/log.ts";
import { issueToken } from "../../src/issue-token.ts";
import { buildApp, buildIssuer } from "../../src/server.ts";
import { basic, hashPassword, loadTestConfig, req, testApp } from "../helpers.ts";

const PASSWORD = "correct horse";
const config = {
  users: { alice: { password: hashPassword(PASSWORD) }, "": {} },
  acl: [{ match: { account: "alice" }, actions: ["*"] }],
};

const spies: { mockRestore(): void }[] = [];
afterEach(() => {
  for (const spy of spies.splice(0)) spy.mockRestore();
});

function tokenRequest(username: string, password: string, scope = "repository:alice/app:pull"): Request {
  return req(`/auth?service=registry&scope=${scope}`, {
    headers: { authorization: basic(username, password) },
  });
}

function quietly<T>(run: () => Promise<T>): Promise<T> {
  const lines: string[] = [];
  const restore = log.capture(lines);
  return run().finally(restore);
}

describe("timing parity for unknown users", () => {
  it("an unknown user is checked against the dummy hash", async () => {
    const { app, verifier } = await testApp(config);
    const dummy = spyOn(verifier, "verifyDummy");
    const real = spyOn(verifier, "verify");
    spies.push(dummy, real);
    const response = await quietly(() => app.handle(tokenRequest("mallory", "guess")));
    expect(response.status).toBe(401);
    expect(dummy).toHaveBeenCalledTimes(1);
    expect(dummy.mock.calls[0]?.[0]).toBe("guess");
    expect(real).not.toHaveBeenCalled();
  });

  it("the dummy check really computes a bcrypt hash", async () => {
    const { app } = await testApp(config);
    const hashVerify = spyOn(Bun.password, "verify");
    spies.push(hashVerify);
    await quietly(() => app.handle(tokenRequest("mallory", "guess")));
    expect(hashVerify).toHaveBeenCalledTimes(1);
    expect(String(hashVerify.mock.calls[0]?.[1])).toMatch(/^\$2[aby]\$10\$/);
  });

  it("a known user with a wrong password is checked against their own hash, not the dummy", async () => {
    const { app, verifier } = await testApp(config);
    const dummy = spyOn(verifier, "verifyDummy");
    const real = spyOn(verifier, "verify");
    spies.push(dummy, real);
    const response = await quietly(() => app.handle(tokenRequest("alice", "wrong")));
    expect(response.status).toBe(401);
    expect(real).toHaveBeenCalledTimes(1);
    expect(dummy).not.toHaveBeenCalled();
  });
});

describe("verified-credential cache", () => {
  it("a repeated request does not verify the hash again", async () => {
    const { app } = await testApp(config);
    const hashVerify = spyOn(Bun.password, "verify");
    spies.push(hashVerify);
    for (let i = 0; i < 5; i++) expect((await app.handle(tokenRequest("alice", PASSWORD))).status).toBe(200);
    expect(hashVerify).toHaveBeenCalledTimes(1);
  });

  it("a wrong password is never cached", async () => {
    const { app } = await testApp(config);
    const hashVerify = spyOn(Bun.password, "verify");
    spies.push(hashVerify);
    await quietly(async () => {
      for (let i = 0; i < 3; i++) expect((await app.handle(tokenRequest("alice", "wrong"))).status).toBe(401);
    });
    expect(hashVerify).toHaveBeenCalledTimes(3);
  });

  it("a changed hash misses the cache: the old password stops working at once", async () => {
    const first = await testApp(config);
    expect((await first.app.handle(tokenRequest("alice", PASSWORD))).status).toBe(200);
    // The same verifier (same process) with a config whose alice has a new password.
    const changed = await loadTestConfig({
      ...config,
      users: { alice: { password: hashPassword("new password") } },
    });
    if (!changed.signingKey) throw new Error("no key");
    const issuer = buildIssuer(changed, changed.signingKey, first.verifier);
    await issuer.failureLatency?.calibrated; // its start-up hash checks are not this request's
    const app = buildApp(changed, issuer);
    const hashVerify = spyOn(Bun.password, "verify");
    spies.push(hashVerify);
    const response = await quietly(() => app.handle(tokenRequest("alice", PASSWORD)));
    expect(response.status).toBe(401);
    expect(hashVerify).toHaveBeenCalledTimes(1);
    expect((await app.handle(tokenRequest("alice", "new password"))).status).toBe(200);
  });
});

describe("failures are not denials", () => {
  it("an authenticator that throws gives a generic 500 without details", async () => {
    const loaded = await loadTestConfig(config);
    if (!loaded.signingKey) throw new Error("no key");
    const broken: Authenticator = {
      name: "broken",
      authenticate() {
        throw new Error("ldap://secret-host:389 bind failed for cn=admin password=hunter2");
      },
    };
    const issuer = {
      ...buildIssuer(loaded, loaded.signingKey, (await testApp(config)).verifier),
      authenticators: [broken],
    };
    const app = buildApp(loaded, issuer);
    const lines: string[] = [];
    const restore = log.capture(lines);
    let response: Response;
    try {
      response = await app.handle(tokenRequest("alice", PASSWORD));
    } finally {
      restore();
    }
    expect(response.status).toBe(500);
    const text = await response.text();
    expect(JSON.parse(text).errors[0].code).toBe("INTERNAL_ERROR");
    expect(text).not.toContain("secret-host");
    expect(text).not.toContain("hunter2");
    expect(text).not.toMatch(/\.ts:\d+/);
    expect(response.headers.get("www-authenticate")).toBeNull();
    // The details go to the log, on one line.
    expect(lines.some((line) => line.includes("level=error") && line.includes("secret-host"))).toBe(true);
    for (const line of lines) expect(line).not.toContain("\n");
  });
});

describe("logs", () => {
  it("a username with CR/LF cannot forge a log line, and the password is never logged", async () => {
    const { app } = await testApp(config);
    const lines: string[] = [];
    const restore = log.capture(lines);
    try {
      const forged = 'mallory\nlevel=info msg="token issued" account=admin';
      const response = await app.handle(tokenRequest(forged, "Sup3rSecretPassw0rd"));
      expect(response.status).toBe(401);
    } finally {
      restore();
    }
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) {
      expect(line).not.toMatch(/[\n\r]/);
      expect(line).not.toContain("Sup3rSecretPassw0rd");
    }
    // One well-formed line per event; the forged text stays inside the quoted account value.
    for (const line of lines) expect(line).toMatch(/^time=\S+ level=\w+ msg=/);
    expect(lines.filter((l) => l.includes("token issued"))).toHaveLength(1);
    for (const line of lines.filter((l) => l.includes("token issued")))
      expect(line).toContain('msg="authentication failed" account="mallory\\nlevel=info');
  });

  it("a huge client_id does not make a huge log line", async () => {
    const { app } = await testApp(config);
    const lines: string[] = [];
    const restore = log.capture(lines);
    try {
      const request = req(`/auth?service=registry&client_id=${"c".repeat(100_000)}`, {
        headers: { authorization: basic("alice", "wrong") },
      });
      expect((await app.handle(request)).status).toBe(401);
    } finally {
      restore();
    }
    expect(lines).toHaveLength(1);
    expect(lines[0]?.length).toBeLessThan(1000);
  });

  it("logs one line per issued token at info: account, service, scopes asked and granted, client (issue 12)", async () => {
    const { app } = await testApp({
      users: config.users,
      acl: [{ match: { account: "alice", name: "alice/*" }, actions: ["pull"] }],
    });
    const lines: string[] = [];
    const restore = log.capture(lines);
    try {
      const response = await app.handle(
        req(
          "/auth?service=registry&client_id=ci-runner&scope=repository:alice/app:pull,push&scope=repository:bob/x:pull",
          {
            headers: { authorization: basic("alice", PASSWORD) },
          },
        ),
      );
      expect(response.status).toBe(200);
    } finally {
      restore();
    }
    const issued = lines.filter((line) => line.includes('msg="token issued"'));
    expect(issued).toHaveLength(1);
    const line = issued[0] ?? "";
    expect(line).toContain("level=info");
    expect(line).toContain("account=alice");
    expect(line).toContain("authenticator=users");
    expect(line).toContain("client_id=ci-runner");
    expect(line).toContain("service=registry");
    expect(line).toContain('scopes_asked="repository:alice/app:pull,push repository:bob/x:pull"');
    expect(line).toContain('scopes_granted="repository:alice/app:pull repository:bob/x:"');
    expect(line).toContain(" ip="); // app.handle has no socket: the address is empty here, set in e2e
  });

  it("tokens never appear in the log", async () => {
    const { app } = await testApp(config);
    const lines: string[] = [];
    const restore = log.capture(lines);
    log.setLevel("debug");
    let token = "";
    try {
      const response = await app.handle(tokenRequest("alice", PASSWORD));
      token = ((await response.json()) as { token: string }).token;
    } finally {
      log.setLevel("info");
      restore();
    }
    expect(token.length).toBeGreaterThan(100);
    for (const line of lines) {
      expect(line).not.toContain(token.split(".")[2] ?? "");
      expect(line).not.toContain(PASSWORD);
    }
  });
});

describe("identical logins in flight (review 2, M2)", () => {
  it("200 identical wrong logins in flight reach a non-deduplicating back-end (like LDAP) once", async () => {
    const { issuer } = await testApp({});
    let binds = 0;
    const slowDirectory: Authenticator = {
      name: "ldap_auth",
      async authenticate() {
        binds++;
        await Bun.sleep(20);
        return { kind: "deny" };
      },
    };
    const request = {
      credentials: { username: "alice", password: "wrong-guess" },
      account: null,
      service: "registry",
      scopes: [],
      ip: null,
      clientId: null,
    };
    const slowIssuer = { ...issuer, authenticators: [slowDirectory] };
    const outcomes = await Promise.allSettled(
      Array.from({ length: 200 }, () => issueToken(slowIssuer, request)),
    );
    expect(outcomes.every((o) => o.status === "rejected")).toBe(true);
    expect(binds).toBe(1);
  });
});
