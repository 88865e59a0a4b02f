/**
 * The identity service's own state (issue 15): pending sign-ins are single use, expire after
 * ten minutes, stay bounded under a flood, and refuse malformed flow ids; provider credentials
 * are sealed for the database (AES-GCM, the link id as additional data) and do not open under
 * another key, for another row, or tampered.
 */
import { describe, expect, it } from "bun:test";
import { statSync } from "node:fs";
import { join } from "node:path";
import { CredentialKey, ensureCredentialKey, IDENTITY_KEY_FILE } from "../../src/identity/credential-key.ts";
import type { PendingSignIn } from "../../src/identity/oidc.ts";
import {
  IdentityService,
  MAX_PENDING_SIGN_INS,
  PENDING_SIGN_IN_SECONDS,
} from "../../src/identity/service.ts";
import { makeTempDir } from "../helpers.ts";

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
