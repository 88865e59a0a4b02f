import { describe, expect, it } from "bun:test";
import { createUser, setEnabled, setPasswordHash } from "../../src/accounts/users.ts";
import { createSession, csrfTokenMatches, findSession, pruneSessions } from "../../src/web/sessions.ts";
import { quickHash, tempDatabase } from "../accounts-helpers.ts";

const LIMITS = { idleSeconds: 1800, maxSeconds: 12 * 3600 };
const T0 = 1_800_000_000;

function fixture() {
  const { db } = tempDatabase();
  const user = createUser(db, {
    name: "alice",
    passwordHash: quickHash("password1"),
    isAdmin: false,
    isEnabled: true,
    nowUnix: T0,
  });
  const id = createSession(db, {
    account: "alice",
    authenticator: "database",
    userId: user.id,
    credentialEpoch: user.credentialEpoch,
    nowUnix: T0,
    ip: "",
  });
  return { db, id };
}

describe("web sessions", () => {
  const cases: [string, number, boolean][] = [
    ["live just after sign-in", T0 + 1, true],
    ["live just before the idle limit", T0 + LIMITS.idleSeconds - 1, true],
    ["ended at the idle limit", T0 + LIMITS.idleSeconds, false],
  ];
  for (const [name, at, live] of cases)
    it(`is ${name}`, () => {
      const { db, id } = fixture();
      expect(findSession(db, id, at, LIMITS) !== null).toBe(live);
    });

  it("use keeps it alive up to the absolute limit, never past it", () => {
    const { db, id } = fixture();
    let at = T0;
    while (at + 600 < T0 + LIMITS.maxSeconds) {
      at += 600;
      expect(findSession(db, id, at, LIMITS)).not.toBeNull();
    }
    expect(findSession(db, id, T0 + LIMITS.maxSeconds, LIMITS)).toBeNull();
  });

  it("ends when the password changes or the account is disabled, and stays ended", () => {
    const a = fixture();
    setPasswordHash(a.db, "alice", quickHash("password2"));
    expect(findSession(a.db, a.id, T0 + 1, LIMITS)).toBeNull();
    const b = fixture();
    setEnabled(b.db, "alice", false);
    setEnabled(b.db, "alice", true);
    expect(findSession(b.db, b.id, T0 + 1, LIMITS)).toBeNull();
  });

  it("refuses malformed and unknown ids without a query error", () => {
    const { db } = fixture();
    for (const id of ["", "x", "A".repeat(43), "'; DROP TABLE web_sessions; --", "é".repeat(43)])
      expect(findSession(db, id, T0, LIMITS)).toBeNull();
  });

  it("stores only a hash of the id, and prunes expired rows", () => {
    const { db, id } = fixture();
    const rows = db.query<{ id_hash: string }, []>("SELECT id_hash FROM web_sessions").all();
    expect(rows).toHaveLength(1);
    expect(rows[0]?.id_hash).not.toContain(id);
    expect(pruneSessions(db, T0 + LIMITS.idleSeconds + 1, LIMITS)).toBe(1);
  });

  it("the CSRF token belongs to its session", () => {
    const { db, id } = fixture();
    const session = findSession(db, id, T0, LIMITS);
    const token = session?.csrfToken ?? "";
    expect(csrfTokenMatches(token, token)).toBe(true);
    expect(csrfTokenMatches(token, `${token}x`)).toBe(false);
    expect(csrfTokenMatches(token, null)).toBe(false);
  });
});
