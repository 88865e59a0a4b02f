import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { importJWK, jwtVerify } from "jose";
import {
  BUNDLE_FILE,
  JWKS_FILE,
  KEY_SET_FILE,
  type KeyEntry,
  keyTimelines,
  LiveKeySet,
  loadKeySet,
  parseKeySetFile,
  publishedAt,
  publishedJwks,
  readKeyEntries,
  renderJwks,
  rotateKey,
  writePublishedFiles,
} from "../../src/token/key-set.ts";
import { ensureGeneratedKey } from "../../src/token/keys.ts";
import { signRegistryToken } from "../../src/token/sign.ts";

const LIFETIME = 300;
const first: KeyEntry = { id: "token", createdAtSeconds: 0, activatesAtSeconds: 0 };
const second: KeyEntry = { id: "token-1", createdAtSeconds: 1000, activatesAtSeconds: 1000 + 86_400 };
const third: KeyEntry = { id: "token-2", createdAtSeconds: 200_000, activatesAtSeconds: 200_100 };

describe("keyTimelines: the key set state machine (times as parameters)", () => {
  const leaves = second.activatesAtSeconds + LIFETIME + 60;
  test.each([
    ["one key is current", [first], 5, ["current"]],
    [
      "before the overlap ends the old key signs, the new one is next",
      [first, second],
      1001,
      ["current", "next"],
    ],
    [
      "at activation the new key signs, the old is retired",
      [first, second],
      second.activatesAtSeconds,
      ["retired", "current"],
    ],
    ["retired until the last token plus leeway expired", [first, second], leaves - 1, ["retired", "current"]],
    ["then expired (unpublished)", [first, second], leaves, ["expired", "current"]],
    [
      "three keys: expired, retired, current",
      [first, second, third],
      third.activatesAtSeconds + 1,
      ["expired", "retired", "current"],
    ],
    ["order on disk does not matter", [second, first], 1001, ["current", "next"]],
    [
      "clock before every activation: the oldest signs",
      [{ ...first, activatesAtSeconds: 50 }],
      10,
      ["current"],
    ],
  ] as const)("%s", (_name, entries, now, states) => {
    expect(keyTimelines(entries, now, LIFETIME).map((t) => t.state)).toEqual([...states]);
  });

  test("retire and leave times", () => {
    const [old] = keyTimelines([first, second], 0, LIFETIME);
    expect(old?.retiresAtSeconds).toBe(second.activatesAtSeconds);
    expect(old?.leavesSetAtSeconds).toBe(leaves);
  });
});

describe("parseKeySetFile: malformed and hostile state", () => {
  test.each([
    ["not JSON", "{"],
    ["no keys", "{}"],
    ["empty keys", '{"keys":[]}'],
    ["null", "null"],
    ["path in id", '{"keys":[{"id":"../etc/passwd","created_at":1,"activates_at":1}]}'],
    ["absolute id", '{"keys":[{"id":"/tmp/x","created_at":1,"activates_at":1}]}'],
    [
      "duplicate id",
      '{"keys":[{"id":"token","created_at":1,"activates_at":1},{"id":"token","created_at":1,"activates_at":1}]}',
    ],
    ["negative time", '{"keys":[{"id":"token","created_at":-1,"activates_at":1}]}'],
    ["string time", '{"keys":[{"id":"token","created_at":"1","activates_at":1}]}'],
    ["fractional time", '{"keys":[{"id":"token","created_at":1.5,"activates_at":1}]}'],
  ])("%s is refused", (_name, text) => {
    expect(() => parseKeySetFile(text)).toThrow(KEY_SET_FILE);
  });
});

describe("rotate, load, publish", () => {
  test("token-keys.json moved aside by hand, token-N files left: the next rotation takes a new id, nothing is overwritten", () => {
    const dir = mkdtempSync(join(tmpdir(), "keyset-"));
    ensureGeneratedKey(dir);
    const now = 1_000_000_000;
    const first = rotateKey(dir, now, 100, LIFETIME);
    const firstKey = readFileSync(join(dir, `${first.id}.key`), "utf8");
    renameSync(join(dir, KEY_SET_FILE), join(dir, `${KEY_SET_FILE}.aside`));
    const next = rotateKey(dir, now + 10_000, 100, LIFETIME);
    expect(first.id).toBe("token-1");
    expect(next.id).toBe("token-2");
    expect(readFileSync(join(dir, "token-1.key"), "utf8")).toBe(firstKey);
  });

  test("rotation adds a next key, signing switches after the overlap, files are 0600/0644, JWKS kids match tokens", async () => {
    const dir = mkdtempSync(join(tmpdir(), "keyset-"));
    ensureGeneratedKey(dir);
    const now = 1_000_000_000;
    const overlap = 100;
    const entry = rotateKey(dir, now, overlap, LIFETIME);
    expect(entry.activatesAtSeconds).toBe(now + overlap);
    expect(statSync(join(dir, `${entry.id}.key`)).mode & 0o777).toBe(0o600);
    expect(() => rotateKey(dir, now + 1, overlap, LIFETIME)).toThrow("already waiting");
    const options = { useThumbprintKid: false, maxTokenLifetimeSeconds: LIFETIME };
    const set = await loadKeySet(dir, now, options);
    expect(set.keys.map((k) => k.timeline.state)).toEqual(["current", "next"]);
    const [oldKey, newKey] = set.keys.map((k) => k.key);
    expect(set.signingKeyAt(now + overlap - 1)).toBe(oldKey as NonNullable<typeof oldKey>);
    expect(set.signingKeyAt(now + overlap)).toBe(newKey as NonNullable<typeof newKey>);
    writePublishedFiles(dir, publishedAt(set, now));
    expect(statSync(join(dir, BUNDLE_FILE)).mode & 0o777).toBe(0o644);
    expect(statSync(join(dir, JWKS_FILE)).mode & 0o777).toBe(0o644);
    expect(readFileSync(join(dir, BUNDLE_FILE), "utf8").match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    const jwks = JSON.parse(readFileSync(join(dir, JWKS_FILE), "utf8")) as ReturnType<typeof renderJwks>;
    expect(jwks.keys.map((k) => k.kid)).toEqual(set.keys.map((k) => k.key.kid));
    // Every key imports with jose and verifies a token its kid names.
    for (const published of set.keys) {
      const jwk = jwks.keys.find((k) => k.kid === published.key.kid);
      if (!jwk) throw new Error("kid missing from the JWKS");
      const token = signRegistryToken(published.key, {
        issuer: "i",
        subject: "s",
        audience: "a",
        access: [],
        issuedAtSeconds: Math.floor(Date.now() / 1000),
        ttlSeconds: 60,
      });
      const header = JSON.parse(Buffer.from(token.split(".")[0] ?? "", "base64url").toString());
      expect(header.kid).toBe(jwk.kid);
      expect(header.x5c).toHaveLength(1);
      await jwtVerify(token, await importJWK(jwk, "ES256"), { algorithms: ["ES256"] });
    }
    // Long after: the first key left the set.
    const later = await loadKeySet(dir, now + overlap + LIFETIME + 60, options);
    expect(later.keys.map((k) => k.timeline.entry.id)).toEqual([entry.id]);
  });

  test("without a state file the set is the generated key", async () => {
    const dir = mkdtempSync(join(tmpdir(), "keyset-"));
    ensureGeneratedKey(dir);
    expect(readKeyEntries(dir).map((e) => e.id)).toEqual(["token"]);
  });

  test("a broken state file is an error, not a silent fallback", async () => {
    const dir = mkdtempSync(join(tmpdir(), "keyset-"));
    ensureGeneratedKey(dir);
    writeFileSync(join(dir, KEY_SET_FILE), '{"keys":[{"id":"token-7","created_at":1,"activates_at":1}]}', {
      mode: 0o600,
    });
    await expect(
      loadKeySet(dir, 10, { useThumbprintKid: true, maxTokenLifetimeSeconds: 60 }),
    ).rejects.toThrow("token-7.key");
  });
});

describe("LiveKeySet: a running server picks up `key rotate`", () => {
  test("notices the state file, reloads, republishes; the new key signs from its activation", async () => {
    const dir = mkdtempSync(join(tmpdir(), "keyset-live-"));
    ensureGeneratedKey(dir);
    const options = { useThumbprintKid: false, maxTokenLifetimeSeconds: LIFETIME };
    const start = Math.floor(Date.now() / 1000);
    const initial = await loadKeySet(dir, start, options);
    writePublishedFiles(dir, publishedAt(initial, start));
    const live = new LiveKeySet(initial, dir, options);
    const oldKid = live.signingKeyAt(start).kid;
    const entry = rotateKey(dir, start, 5, LIFETIME);
    await Bun.sleep(1100); // the mtime is looked at no more than once a second
    live.signingKeyAt(start);
    for (let i = 0; i < 100 && live.current.keys.length < 2; i++) await Bun.sleep(10);
    expect(live.current.keys.map((k) => k.timeline.entry.id)).toEqual(["token", entry.id]);
    expect(live.signingKeyAt(start).kid).toBe(oldKid);
    expect(live.signingKeyAt(entry.activatesAtSeconds).kid).not.toBe(oldKid);
    expect(readFileSync(join(dir, BUNDLE_FILE), "utf8").match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    // The JWKS endpoint's view.
    const served = publishedJwks({ signingKey: live.signingKeyAt(start), keySet: live }, start);
    expect(served.keys.map((k) => k.kid)).toEqual(live.current.keys.map((k) => k.key.kid));
  });

  test("a broken state file keeps the previous set signing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "keyset-live-"));
    ensureGeneratedKey(dir);
    const options = { useThumbprintKid: false, maxTokenLifetimeSeconds: LIFETIME };
    const now = Math.floor(Date.now() / 1000);
    const live = new LiveKeySet(await loadKeySet(dir, now, options), dir, options);
    const kid = live.signingKeyAt(now).kid;
    writeFileSync(join(dir, KEY_SET_FILE), "{not json", { mode: 0o600 });
    await Bun.sleep(1100);
    live.signingKeyAt(now);
    await Bun.sleep(100);
    expect(live.signingKeyAt(now).kid).toBe(kid);
  });
});
