/**
 * The identity service's own state (issue 15): pending sign-ins are single use, expire after
 * ten minutes, stay bounded under a flood, and refuse malformed flow ids; provider credentials
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
  MAX_PENDING_SIGN_INS,
  PENDING_SIGN_IN_SECONDS,
} from "../../src/identity/service.ts";
import { freePort } from "../e2e/free-port.ts";
import { loadTestConfig, makeTempDir } from "../helpers.ts";
import { loginAtProvider, startTestProvider } from "./oidc-provider.ts";

const pending = (createdAtUnix: number): PendingSignIn => ({
  provider: "p",
  state: "s",
  nonce: "n",
  codeVerifier: "v",
  next: "/",
  createdAtUnix,
});

function service() {
  return new IdentityService({ oidc: [], github: [] }, "", CredentialKey.random());
}

describe("pending sign-ins", () => {
  it("are taken once", () => {
    const s = service();
    const id = s.remember(pending(100), 100);
    expect(s.take(id, 101)?.state).toBe("s");
    expect(s.take(id, 101)).toBeNull();
  });

  it("expire after ten minutes", () => {
    const s = service();
    const id = s.remember(pending(100), 100);
    expect(s.take(id, 100 + PENDING_SIGN_IN_SECONDS + 1)).toBeNull();
  });

  it.each([undefined, "", "short", "x".repeat(44), "%00".repeat(15), "a b".repeat(15)])(
    "refuse the flow id %p",
    (id) => {
      const s = service();
      s.remember(pending(100), 100);
      expect(s.take(id, 100)).toBeNull();
    },
  );

  it("stay bounded under a flood: the oldest go first", () => {
    const s = service();
    const first = s.remember(pending(100), 100);
    let last = "";
    for (let i = 0; i < MAX_PENDING_SIGN_INS + 10; i++) last = s.remember(pending(100), 100);
    expect(s.take(first, 100)).toBeNull();
    expect(s.take(last, 100)).not.toBeNull();
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
