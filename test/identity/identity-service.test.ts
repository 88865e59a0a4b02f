/**
 * The identity service's own state (issue 15): flow cookies (sealed pending sign-ins) open only
 * for their provider and process, expire after ten minutes, are single use once their code
 * exchange succeeded, refuse tampered, truncated and oversized values, and cost the server no
 * memory per started sign-in; the re-check's outage cap (max_unchecked_seconds); provider credentials
 * are sealed for the database (AES-GCM, the link id as additional data) and do not open under
 * another key, for another row, or tampered.
 */
import { afterAll, describe, expect, it } from "bun:test";
import { statSync } from "node:fs";
import { join } from "node:path";
import { createAccessToken, findTokenBySecret } from "../../src/access-tokens/access-tokens.ts";
import { ensureAccessTokenKey } from "../../src/access-tokens/key.ts";
import type { AuditLog, NewAuditEvent } from "../../src/audit/audit-log.ts";
import { databasePath, openDatabase } from "../../src/db/database.ts";
import { CredentialKey, ensureCredentialKey, IDENTITY_KEY_FILE } from "../../src/identity/credential-key.ts";
import { findLink, markChecked, resolveAccount } from "../../src/identity/links.ts";
import type { PendingSignIn } from "../../src/identity/oidc.ts";
import {
  IdentityService,
  MAX_FLOW_COOKIE_CHARS,
  MAX_USED_FLOWS,
  PENDING_SIGN_IN_SECONDS,
} from "../../src/identity/service.ts";
import { freePort } from "../e2e/free-port.ts";
import { loadTestConfig, makeTempDir } from "../helpers.ts";
import { loginAtProvider, startTestProvider } from "./oidc-provider.ts";
import { randomBytes } from "node:crypto";
import { serverSecret, useServerSecret } from "../../src/serve/server-secret.ts";

const pending = (createdAtUnix: number): PendingSignIn => ({
  provider: "p",
  state: "s",
  nonce: "n",
  codeVerifier: "v".repeat(43),
  next: "/",
  createdAtUnix,
});

function service() {
  return new IdentityService({ oidc: [], github: [] }, "", CredentialKey.random());
}

/** What `make` seals under another server start's secret (src/serve/server-secret.ts); this one's is kept. */
function inAnotherServerStart<T>(make: () => T): T {
  const mine = serverSecret();
  useServerSecret(randomBytes(32));
  try {
    return make();
  } finally {
    useServerSecret(mine);
  }
}

describe("flow cookies (sealed pending sign-ins)", () => {
  const NOW = 1_800_000_000;

  it("open for their provider, within ten minutes, until used; then never again", () => {
    const s = service();
    const sealed = s.sealFlow(pending(NOW));
    const flow = s.openFlow(sealed, "p", NOW + 1);
    expect(flow?.pending).toEqual(pending(NOW));
    expect(flow?.id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    // Not used until a code exchange succeeds: a refused callback may be tried again.
    expect(s.openFlow(sealed, "p", NOW + 2)?.id).toBe(flow?.id ?? "");
    if (!flow) throw new Error("did not open");
    expect(s.useFlow(flow, NOW + 2)).toBe(true);
    expect(s.useFlow(flow, NOW + 3)).toBe(false);
    expect(s.openFlow(sealed, "p", NOW + 3)).toBeNull();
    expect(s.openFlow(sealed, "p", NOW + PENDING_SIGN_IN_SECONDS)).toBeNull();
    // Each start is its own flow: a second cookie for the same sign-in data is a new id.
    expect(s.openFlow(s.sealFlow(pending(NOW)), "p", NOW + 3)?.id).not.toBe(flow.id);
  });

  it("stay well under a browser's 4 kB cookie for the longest next (512) and provider name (32)", () => {
    const s = service();
    const longest = { ...pending(NOW), provider: "p".repeat(32), next: `/${"n".repeat(511)}` };
    const sealed = s.sealFlow(longest);
    expect(sealed.length).toBeLessThan(1200);
    expect(s.openFlow(sealed, longest.provider, NOW)?.pending).toEqual(longest);
  });

  it("expire after ten minutes, and a start from the future is not ours", () => {
    const s = service();
    expect(s.openFlow(s.sealFlow(pending(NOW)), "p", NOW + PENDING_SIGN_IN_SECONDS)).not.toBeNull();
    expect(s.openFlow(s.sealFlow(pending(NOW)), "p", NOW + PENDING_SIGN_IN_SECONDS + 1)).toBeNull();
    expect(s.openFlow(s.sealFlow(pending(NOW + 3600)), "p", NOW)).toBeNull();
  });

  it("open in another worker of the same server (issue 17: one key per server start)", () => {
    expect(service().openFlow(service().sealFlow(pending(NOW)), "p", NOW)).not.toBeNull();
  });

  it("do not open at another provider, in another process, tampered, truncated or oversized", () => {
    const s = service();
    const sealed = s.sealFlow(pending(NOW));
    const flip = (at: number) =>
      `${sealed.slice(0, at)}${sealed[at] === "A" ? "B" : "A"}${sealed.slice(at + 1)}`;
    for (const [why, value] of [
      ["another provider", null],
      ["another server start's key", inAnotherServerStart(() => service().sealFlow(pending(NOW)))],
      ["a flipped IV byte", flip(4)],
      ["a flipped ciphertext byte", flip(Math.floor(sealed.length / 2))],
      // Not the last character: between A and B it may change only padding bits, and still open.
      ["a flipped tag byte", flip(sealed.length - 3)],
      ["truncated", sealed.slice(0, -1)],
      ["truncated to IV and tag", sealed.slice(0, 3 + 38)],
      ["oversized", `${sealed}${"A".repeat(MAX_FLOW_COOKIE_CHARS)}`],
      ["undefined", undefined],
      ["empty", ""],
      ["the prefix alone", "v1."],
      ["another version", `v2.${sealed.slice(3)}`],
      ["characters outside base64url", `${sealed.slice(0, 20)}+/=${sealed.slice(23)}`],
      ["a space", `${sealed.slice(0, 20)} ${sealed.slice(21)}`],
      ["an old random flow id", "x".repeat(43)],
    ] as const) {
      const opened = value === null ? s.openFlow(sealed, "q", NOW) : s.openFlow(value, "p", NOW);
      expect({ why, opened }).toEqual({ why, opened: null });
    }
  });

  it("refuse a sealed value of the wrong shape (narrowed field by field)", () => {
    const s = service();
    for (const bad of [
      { ...pending(NOW), createdAtUnix: "1800000000" },
      { ...pending(NOW), createdAtUnix: NOW + 0.5 },
      { ...pending(NOW), state: 7 },
      { ...pending(NOW), next: null },
    ]) {
      expect(s.openFlow(s.sealFlow(bad as unknown as PendingSignIn), "p", NOW)).toBeNull();
    }
  });

  it("the server keeps nothing per started sign-in, and the used ones stay bounded", () => {
    const s = service();
    for (let i = 0; i < 20_000; i++) s.sealFlow(pending(NOW));
    expect(s.usedFlowCount).toBe(0);
    let first = null;
    for (let i = 0; i < MAX_USED_FLOWS + 10; i++) {
      const flow = s.openFlow(s.sealFlow(pending(NOW)), "p", NOW);
      if (!flow || !s.useFlow(flow, NOW)) throw new Error("did not open or use");
      first ??= flow;
    }
    expect(s.usedFlowCount).toBe(MAX_USED_FLOWS);
    // Past its ten minutes a used flow is forgotten (it could not open any more anyway).
    const late = s.openFlow(
      s.sealFlow(pending(NOW + PENDING_SIGN_IN_SECONDS)),
      "p",
      NOW + PENDING_SIGN_IN_SECONDS + 1,
    );
    if (!late) throw new Error("did not open");
    s.useFlow(late, NOW + PENDING_SIGN_IN_SECONDS + 1);
    expect(s.usedFlowCount).toBe(1);
  });
});

describe("sealed provider credentials", () => {
  it("open for their row under their key, and nowhere else", () => {
    const key = CredentialKey.random();
    const sealed = key.seal(7, "refresh-token-value");
    expect(sealed).not.toContain("refresh-token-value");
    expect(key.open(7, sealed)).toBe("refresh-token-value");
    expect(key.open(8, sealed)).toBeNull();
    expect(CredentialKey.random().open(7, sealed)).toBeNull();
    const tampered = `${sealed.slice(0, -2)}${sealed.endsWith("A") ? "B" : "A"}A`;
    expect(key.open(7, tampered)).toBeNull();
    for (const junk of ["", "v1.", "v1.AAAA", "plain-text", "v2.abc"]) expect(key.open(7, junk)).toBeNull();
  });

  it("the key file is made once, private, and read back the same", () => {
    const dir = makeTempDir("regauth-identity-key-");
    const a = ensureCredentialKey(dir);
    const b = ensureCredentialKey(dir);
    expect(b.open(1, a.seal(1, "x"))).toBe("x");
    expect(statSync(join(dir, IDENTITY_KEY_FILE)).mode & 0o777).toBe(0o600);
  });
});

/**
 * max_unchecked_seconds: a provider that cannot be reached postpones the re-check (an outage is
 * not a removal), but not for ever. Against the real oidc-provider, stopped after the sign-in.
 */
describe("the re-check while the provider is unreachable", async () => {
  const port = await freePort();
  const callback = "http://localhost/sign-in/oidc/test/callback";
  const op = await startTestProvider({
    port,
    redirectUris: [callback],
    accounts: { dana: { email: "dana@example.com", groups: ["dev"] } },
  });
  let stopped = false;
  afterAll(async () => {
    if (!stopped) await op.stop();
  });
  const dataDir = makeTempDir("regauth-outage-");
  const loaded = await loadTestConfig(
    {
      identity_providers: {
        public_url: "http://localhost",
        oidc: [
          {
            name: "test",
            issuer: op.issuer,
            client_id: op.clientId,
            client_secret: op.clientSecret,
            scopes: ["openid", "profile", "email", "groups"],
            first_sign_in: "create",
            revalidate_after_seconds: 60,
            max_unchecked_seconds: 600,
          },
        ],
      },
    },
    dataDir,
  );
  const db = openDatabase(databasePath(dataDir));
  const accessTokenKey = ensureAccessTokenKey(dataDir);
  const identity = new IdentityService(loaded.config.identity_providers, "", CredentialKey.random());
  const events: NewAuditEvent[] = [];
  const audit = { record: (event: NewAuditEvent) => events.push(event) } as unknown as AuditLog;

  it("postpones the re-check until max_unchecked_seconds after the last good one, then ends access", async () => {
    const driver = identity.providers.get("test");
    if (!driver) throw new Error("no provider");
    expect(driver.maxUncheckedSeconds).toBe(600);
    const now = Math.floor(Date.now() / 1000);
    const started = await driver.start("/", now);
    const result = await driver.finish(started.pending, await loginAtProvider(started.url, "dana", callback));
    if (result.kind !== "ok") throw new Error(`sign-in refused: ${JSON.stringify(result)}`);
    const resolved = resolveAccount(db, driver.rules, result.identity, now);
    if (resolved.kind !== "ok") throw new Error(resolved.message);
    markChecked(db, resolved.link.id, identity.seal(resolved.link.id, result.identity.refreshToken), now, {});
    const { secret } = createAccessToken(db, accessTokenKey, {
      owner: "dana",
      name: "laptop",
      scopes: ["pull"],
      repositoryPatterns: ["dana/*"],
      expiresAtUnix: null,
      nowUnix: now,
    });
    await op.stop();
    stopped = true;
    // Due (60 s), unreachable, within the cap: postponed; nothing ends, the last check stays.
    for (const at of [now + 61, now + 300, now + 600]) {
      expect({ at: at - now, ...(await identity.revalidate(db, audit, at)) }).toEqual({
        at: at - now,
        checked: 1,
        ended: 0,
      });
    }
    expect(findLink(db, op.issuer, "dana")?.checkedAtUnix).toBe(now);
    expect(findTokenBySecret(db, accessTokenKey, secret)).not.toBeNull();
    expect(events).toEqual([]);
    // Past the cap: ended exactly as a refusal ends it.
    expect(await identity.revalidate(db, audit, now + 601)).toEqual({ checked: 1, ended: 1 });
    expect(findTokenBySecret(db, accessTokenKey, secret)).toBeNull();
    const link = findLink(db, op.issuer, "dana");
    expect(link?.refreshToken).toBeNull();
    expect(link?.checkedAtUnix).toBe(0);
    expect(events).toMatchObject([
      {
        kind: "identity.revoked",
        actor: "dana",
        outcome: "denied",
        details: {
          provider: "test",
          reason: "provider unreachable for longer than max_unchecked_seconds",
          access_tokens_deleted: 1,
        },
      },
    ]);
    // Ended links are not due any more (a new sign-in starts them again).
    expect(await identity.revalidate(db, audit, now + 2000)).toEqual({ checked: 0, ended: 0 });
  });
});

/**
 * A driver that throws at one link (a bug, an answer no branch expected) must not end the sweep:
 * the other links are still re-checked, and the throwing one is an outage, not a removal.
 */
describe("a re-check that throws", async () => {
  const dataDir = makeTempDir("regauth-recheck-throws-");
  const issuer = "https://sso.example.test";
  const loaded = await loadTestConfig(
    {
      identity_providers: {
        public_url: "http://localhost",
        oidc: [
          {
            name: "test",
            issuer,
            client_id: "regauth",
            client_secret: "client-secret-for-tests",
            first_sign_in: "create",
            revalidate_after_seconds: 60,
          },
        ],
      },
    },
    dataDir,
  );
  const db = openDatabase(databasePath(dataDir));
  const identity = new IdentityService(loaded.config.identity_providers, "", CredentialKey.random());

  it("is postponed for that link only; the sweep goes on to the next", async () => {
    const driver = identity.providers.get("test");
    if (!driver) throw new Error("no provider");
    const now = Math.floor(Date.now() / 1000);
    for (const name of ["erin", "fred"]) {
      const resolved = resolveAccount(
        db,
        driver.rules,
        { issuer, subject: `sub-${name}`, claims: { preferred_username: name } },
        now,
      );
      if (resolved.kind !== "ok") throw new Error(resolved.message);
      markChecked(db, resolved.link.id, identity.seal(resolved.link.id, `rt-${name}`), now, {});
    }
    const asked: string[] = [];
    (driver as { recheck: typeof driver.recheck }).recheck = async (_credential, subject) => {
      asked.push(subject);
      if (subject === "sub-erin") throw new TypeError("Cannot read properties of undefined");
      return { kind: "refused", reason: "removed at the provider" };
    };
    expect(await identity.revalidate(db, null, now + 61)).toEqual({ checked: 2, ended: 1 });
    expect(asked.sort()).toEqual(["sub-erin", "sub-fred"]);
    expect(findLink(db, issuer, "sub-erin")?.refreshToken).not.toBeNull(); // postponed, not ended
    expect(findLink(db, issuer, "sub-fred")?.refreshToken).toBeNull();
  });
});
