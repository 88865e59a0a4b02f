import { describe, expect, it } from "bun:test";
import { createHmac } from "node:crypto";
import { backgroundWriterFor } from "../../src/db/background-writer.ts";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  createUser,
  deleteUser,
  findUser,
  releaseName,
  setEnabled,
  setPasswordHash,
} from "../../src/accounts/users.ts";
import type { Principal } from "../../src/authn/authenticator.ts";
import {
  claimedSubject,
  credentialLookup,
  ensureRefreshSecret,
  REFRESH_KEY_FILE,
  RefreshTokens,
} from "../../src/token/refresh-token.ts";
import { quickHash, tempDatabase } from "../accounts-helpers.ts";
import { loadTestConfig, makeTempDir } from "../helpers.ts";

const NOW = 1_700_000_000;
const DAY = 86_400;
const SECRET = Buffer.alloc(32, 7);

function principal(account: string, authenticator: string, labels = {}): Principal {
  return { account, labels, isAnonymous: account === "", authenticator };
}

/** A config user alice (with labels) and a database user bob, as the server wires them. */
function fixture(lifetimeSeconds = 30 * DAY) {
  const { db } = tempDatabase();
  createUser(db, { name: "bob", passwordHash: quickHash("bob-password"), nowUnix: NOW });
  const users = {
    alice: { password: quickHash("alice-password"), labels: { team: ["ops"] } },
    "": {}, // the anonymous user
  };
  const tokens = new RefreshTokens(SECRET, lifetimeSeconds, credentialLookup(users, db));
  return { db, users, tokens };
}

function payloadOf(token: string): Record<string, unknown> {
  const [, payload = ""] = token.split(".");
  return JSON.parse(Buffer.from(payload, "base64url").toString());
}

/** Re-signs a modified payload with the right secret: what a holder of the key could do. */
function resigned(payload: Record<string, unknown>, secret = SECRET): string {
  const encoded = Buffer.from(JSON.stringify(payload)).toString("base64url");
  const mac = createHmac("sha256", secret).update(`rt1.${encoded}`).digest("base64url");
  return `rt1.${encoded}.${mac}`;
}

describe("refresh token format", () => {
  it("is rt1.<payload>.<HMAC-SHA256>, not a JWT, with sub, aud, src, iat, exp and cred", () => {
    const { tokens } = fixture();
    const token = tokens.issue(principal("bob", "database"), "registry", NOW) ?? "";
    expect(token).toMatch(/^rt1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    const payload = payloadOf(token);
    expect(payload).toEqual({
      sub: "bob",
      aud: "registry",
      src: "database",
      iat: NOW,
      exp: NOW + 30 * DAY,
      cred: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/),
    });
    // Not a password hash, nor anything derived from it without the secret.
    expect(token).not.toContain("$2");
    expect(resigned(payload)).toBe(token);
  });

  it("redeems for the same account and service, as a database principal", () => {
    const { tokens } = fixture();
    const token = tokens.issue(principal("bob", "database"), "registry", NOW) ?? "";
    expect(tokens.redeem(token, "registry", NOW + DAY)).toEqual({
      kind: "allow",
      principal: { account: "bob", labels: {}, isAnonymous: false, authenticator: "database" },
    });
  });

  it("a redemption counts as a login of the database user (last_login_at_unix)", async () => {
    const { tokens, db } = fixture();
    const token = tokens.issue(principal("bob", "database"), "registry", NOW) ?? "";
    expect(findUser(db, "bob")?.lastLoginAtUnix).toBe(0);
    expect(tokens.redeem(token, "registry", NOW + 1).kind).toBe("allow");
    // Queued for the background writer (batched, never on the request path), not written yet.
    expect(backgroundWriterFor(db).pending).toBe(1);
    await backgroundWriterFor(db).flush();
    expect(findUser(db, "bob")?.lastLoginAtUnix).toBeGreaterThan(0);
  });

  it("keeps a config user's labels", () => {
    const { tokens } = fixture();
    const token = tokens.issue(principal("alice", "users", { team: ["ops"] }), "registry", NOW) ?? "";
    const result = tokens.redeem(token, "registry", NOW + 1);
    expect(result).toEqual({
      kind: "allow",
      principal: { account: "alice", labels: { team: ["ops"] }, isAnonymous: false, authenticator: "users" },
    });
  });

  it("is issued for accounts registered by docker login (database)", () => {
    const { tokens } = fixture();
    const token = tokens.issue(principal("bob", "registration"), "registry", NOW) ?? "";
    expect(payloadOf(token).src).toBe("database");
  });

  it("is never issued to anonymous, LDAP or ext_auth principals, nor to unknown or disabled accounts", () => {
    const { tokens, db } = fixture();
    expect(tokens.issue(principal("", "users"), "registry", NOW)).toBeNull();
    expect(tokens.issue(principal("", "database"), "registry", NOW)).toBeNull();
    expect(tokens.issue(principal("bob", "ldap_auth"), "registry", NOW)).toBeNull();
    expect(tokens.issue(principal("bob", "ext_auth"), "registry", NOW)).toBeNull();
    expect(tokens.issue(principal("nobody", "database"), "registry", NOW)).toBeNull();
    // A name the chain would resolve elsewhere: bob is not a config user.
    expect(tokens.issue(principal("bob", "users"), "registry", NOW)).toBeNull();
    setEnabled(db, "bob", false);
    expect(tokens.issue(principal("bob", "database"), "registry", NOW)).toBeNull();
  });

  it("refresh_expiration 0 issues none and honours none", () => {
    const { db, users } = fixture();
    const on = new RefreshTokens(SECRET, 30 * DAY, credentialLookup(users, db));
    const off = new RefreshTokens(SECRET, 0, credentialLookup(users, db));
    const token = on.issue(principal("bob", "database"), "registry", NOW) ?? "";
    expect(off.issue(principal("bob", "database"), "registry", NOW)).toBeNull();
    expect(off.redeem(token, "registry", NOW)).toEqual({ kind: "deny", reason: "expired" });
  });
});

describe("refresh token refusals", () => {
  const { tokens, db } = fixture();
  const token = tokens.issue(principal("bob", "database"), "registry", NOW) ?? "";
  const [prefix, payload = "", mac = ""] = token.split(".");

  const flip = (text: string, index: number) =>
    text.slice(0, index) + (text[index] === "A" ? "B" : "A") + text.slice(index + 1);

  const cases: [string, string, string][] = [
    ["empty", "", "malformed"],
    ["a JWT", "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2ln", "malformed"],
    ["another version", `rt2.${payload}.${mac}`, "malformed"],
    ["no MAC", `${prefix}.${payload}`, "malformed"],
    ["an extra part", `${token}.x`, "malformed"],
    ["a padded MAC", `${token}=`, "malformed"],
    ["a short MAC", `${prefix}.${payload}.${mac.slice(0, 42)}`, "malformed"],
    [
      "a MAC with non-zero trailing bits",
      `${prefix}.${payload}.${mac.slice(0, 42)}${mac.endsWith("B") ? "C" : "B"}`,
      "",
    ],
    ["non-base64url characters", `${prefix}.${payload}+.${mac}`, "malformed"],
    ["10 kB of junk", `rt1.${"a".repeat(10_000)}.${mac}`, "malformed"],
    ["a flipped payload character", `${prefix}.${flip(payload, 5)}.${mac}`, "bad signature"],
    ["a flipped MAC character", `${prefix}.${payload}.${flip(mac, 3)}`, "bad signature"],
    [
      "another account's name in the payload",
      `${prefix}.${Buffer.from(JSON.stringify({ ...payloadOf(token), sub: "alice" })).toString("base64url")}.${mac}`,
      "bad signature",
    ],
    ["the MAC of another secret", resigned(payloadOf(token), Buffer.alloc(32, 8)), "bad signature"],
  ];
  for (const [what, presented, reason] of cases) {
    it(`refuses ${what}${reason ? ` (${reason})` : ""}`, () => {
      const result = tokens.redeem(presented, "registry", NOW + 1);
      expect(result.kind).toBe("deny");
      if (reason !== "") expect(result).toEqual({ kind: "deny", reason: reason as never });
    });
  }

  it("refuses a token past its exp, and one older than the configured lifetime", () => {
    expect(tokens.redeem(token, "registry", NOW + 30 * DAY).kind).toBe("deny");
    expect(tokens.redeem(token, "registry", NOW + 30 * DAY - 1).kind).toBe("allow");
    const shorter = new RefreshTokens(SECRET, DAY, credentialLookup({}, db));
    expect(shorter.redeem(token, "registry", NOW + DAY)).toEqual({ kind: "deny", reason: "expired" });
  });

  it("refuses another service (scope.md: bound to one audience)", () => {
    expect(tokens.redeem(token, "other-registry", NOW + 1)).toEqual({
      kind: "deny",
      reason: "wrong service",
    });
  });

  it("refuses a validly signed payload of the wrong shape", () => {
    const bad = resigned({ sub: "bob", aud: "registry", src: "ldap", iat: NOW, exp: NOW + DAY, cred: "x" });
    expect(tokens.redeem(bad, "registry", NOW + 1)).toEqual({ kind: "deny", reason: "malformed" });
    const notJson = `rt1.${Buffer.from("{").toString("base64url")}`;
    const mac = createHmac("sha256", SECRET).update(`${notJson}`).digest("base64url");
    expect(tokens.redeem(`${notJson}.${mac}`, "registry", NOW + 1)).toEqual({
      kind: "deny",
      reason: "malformed",
    });
  });

  it("a token made before the credential epoch existed (schema v1) still redeems at epoch 0", () => {
    const { tokens, db } = fixture();
    const hash = findUser(db, "bob")?.passwordHash ?? "";
    // The v1 cred: HMAC(secret, "cred\0database\0bob\0<hash>"), first 16 bytes.
    const cred = createHmac("sha256", SECRET)
      .update(`cred\0database\0bob\0${hash}`)
      .digest()
      .subarray(0, 16)
      .toString("base64url");
    const old = resigned({ sub: "bob", aud: "registry", src: "database", iat: NOW, exp: NOW + DAY, cred });
    expect(tokens.redeem(old, "registry", NOW + 1).kind).toBe("allow");
    setEnabled(db, "bob", false);
    setEnabled(db, "bob", true);
    expect(tokens.redeem(old, "registry", NOW + 1)).toEqual({ kind: "deny", reason: "credentials changed" });
  });

  it("a password change revokes every token of the account at once", () => {
    const { tokens, db } = fixture();
    const first = tokens.issue(principal("bob", "database"), "registry", NOW) ?? "";
    const second = tokens.issue(principal("bob", "database"), "registry", NOW + 5) ?? "";
    setPasswordHash(db, "bob", quickHash("new-password"));
    expect(tokens.redeem(first, "registry", NOW + 10)).toEqual({
      kind: "deny",
      reason: "credentials changed",
    });
    expect(tokens.redeem(second, "registry", NOW + 10)).toEqual({
      kind: "deny",
      reason: "credentials changed",
    });
    // A token issued after the change works.
    const third = tokens.issue(principal("bob", "database"), "registry", NOW + 20) ?? "";
    expect(tokens.redeem(third, "registry", NOW + 30).kind).toBe("allow");
  });

  it("a config user's password change (new hash in the file) revokes", () => {
    const { db, users } = fixture();
    const before = new RefreshTokens(SECRET, DAY, credentialLookup(users, db));
    const token = before.issue(principal("alice", "users"), "registry", NOW) ?? "";
    const changed = { ...users, alice: { password: quickHash("alice-new"), labels: {} } };
    const after = new RefreshTokens(SECRET, DAY, credentialLookup(changed, db));
    expect(after.redeem(token, "registry", NOW + 1)).toEqual({ kind: "deny", reason: "credentials changed" });
  });

  it("disabling or deleting the account revokes", () => {
    const { tokens, db } = fixture();
    const token = tokens.issue(principal("bob", "database"), "registry", NOW) ?? "";
    setEnabled(db, "bob", false);
    expect(tokens.redeem(token, "registry", NOW + 1)).toEqual({ kind: "deny", reason: "account disabled" });
    // Enabling again does not revive it (issue 8: the docs say a disable revokes).
    setEnabled(db, "bob", true);
    expect(tokens.redeem(token, "registry", NOW + 1)).toEqual({
      kind: "deny",
      reason: "credentials changed",
    });
    const afterEnable = tokens.issue(principal("bob", "database"), "registry", NOW + 2) ?? "";
    expect(tokens.redeem(afterEnable, "registry", NOW + 3).kind).toBe("allow");
    deleteUser(db, "bob");
    expect(tokens.redeem(afterEnable, "registry", NOW + 3)).toEqual({
      kind: "deny",
      reason: "unknown account",
    });
    // Recreating the name (after releasing it), even with the same password, does not bring old
    // tokens back: new salt.
    releaseName(db, "bob");
    createUser(db, { name: "bob", passwordHash: quickHash("bob-password"), nowUnix: NOW });
    expect(tokens.redeem(afterEnable, "registry", NOW + 3)).toEqual({
      kind: "deny",
      reason: "credentials changed",
    });
    expect(tokens.redeem(token, "registry", NOW + 1)).toEqual({
      kind: "deny",
      reason: "credentials changed",
    });
  });

  it("a config user added with a database user's name takes the name over: the database token stops working", () => {
    const { db } = fixture();
    const dbOnly = new RefreshTokens(SECRET, DAY, credentialLookup({}, db));
    const token = dbOnly.issue(principal("bob", "database"), "registry", NOW) ?? "";
    const shadowed = new RefreshTokens(
      SECRET,
      DAY,
      credentialLookup({ bob: { password: quickHash("config-bob") } }, db),
    );
    expect(shadowed.redeem(token, "registry", NOW + 1)).toEqual({ kind: "deny", reason: "unknown account" });
  });

  it("claimedSubject reads the account for the throttle without trusting it", () => {
    expect(claimedSubject(token)).toBe("bob");
    expect(claimedSubject("garbage")).toBe("");
    expect(claimedSubject(`rt1.${"%%%"}.${mac}`)).toBe("");
  });
});

describe("refresh.key", () => {
  it("is 32 random bytes, mode 0600, created once and reused", () => {
    const dir = makeTempDir();
    const first = ensureRefreshSecret(dir);
    const path = join(dir, REFRESH_KEY_FILE);
    expect(first.length).toBe(32);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(ensureRefreshSecret(dir).equals(first)).toBe(true);
  });

  it("a truncated key file is an error naming the fix", () => {
    const dir = makeTempDir();
    writeFileSync(join(dir, REFRESH_KEY_FILE), "short");
    expect(() => ensureRefreshSecret(dir)).toThrow(/fewer than 32.*delete it/);
  });

  it("the config loader creates it in data_dir, and not when refresh_expiration is 0", async () => {
    const on = makeTempDir();
    const loaded = await loadTestConfig({}, on);
    expect(loaded.config.token.refresh_expiration).toBe(30 * DAY);
    expect(loaded.refreshSecret?.equals(readFileSync(join(on, REFRESH_KEY_FILE)))).toBe(true);
    const off = makeTempDir();
    const disabled = await loadTestConfig({ token: { issuer: "x", refresh_expiration: 0 } }, off);
    expect(disabled.refreshSecret).toBeNull();
    expect(existsSync(join(off, REFRESH_KEY_FILE))).toBe(false);
  });

  it("refresh_expiration must be a non-negative integer of at most a year", async () => {
    for (const bad of [-1, 1.5, 31_536_001, "30d"]) {
      await expect(loadTestConfig({ token: { issuer: "x", refresh_expiration: bad } })).rejects.toThrow(
        /token\.refresh_expiration/,
      );
    }
  });
});
