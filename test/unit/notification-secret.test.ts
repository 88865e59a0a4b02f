/** The notifications secret (src/registry-index/secret.ts): generated once, 0600, never through a link; the operator's own file checked. */
import { describe, expect, it } from "bun:test";
import { readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../../src/errors.ts";
import {
  ensureNotificationSecret,
  loadNotificationSecret,
  NOTIFICATIONS_SECRET_FILE,
} from "../../src/registry-index/secret.ts";
import { makeTempDir } from "../helpers.ts";

describe("ensureNotificationSecret", () => {
  it("creates 32 random bytes, base64url, 0600, and returns the same secret on every call", () => {
    const dir = makeTempDir();
    const first = ensureNotificationSecret(dir);
    expect(first).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const path = join(dir, NOTIFICATIONS_SECRET_FILE);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readFileSync(path, "utf8")).toBe(`${first}\n`);
    expect(ensureNotificationSecret(dir)).toBe(first);
    expect(readdirSync(dir)).toEqual([NOTIFICATIONS_SECRET_FILE]); // no temporary file left
    expect(ensureNotificationSecret(makeTempDir())).not.toBe(first);
  });

  it("refuses a symbolic link planted at the name", () => {
    const dir = makeTempDir();
    writeFileSync(join(dir, "elsewhere"), "attacker-chosen-secret-0000000000");
    symlinkSync(join(dir, "elsewhere"), join(dir, NOTIFICATIONS_SECRET_FILE));
    expect(() => ensureNotificationSecret(dir)).toThrow("symbolic link");
  });

  it("reads notifications.secret_file, without one trailing newline, and creates nothing", () => {
    const dir = makeTempDir();
    const file = join(makeTempDir(), "secret");
    writeFileSync(file, "operator-chosen-secret-1234\n");
    expect(ensureNotificationSecret(dir, file)).toBe("operator-chosen-secret-1234");
    expect(readdirSync(dir)).toEqual([]);
  });

  it.each([
    ["too short", "short\n"],
    ["empty", ""],
    ["with a space", "operator chosen secret 1234"],
    ["two lines", "operator-chosen-secret-1234\nsecond-line-of-it\n"],
    ["non-ASCII", "operator-chosen-secret-ü-1234"],
    ["longer than 1024", "x".repeat(1025)],
  ])("refuses a secret file that is %s, naming the key", (_name, contents) => {
    const file = join(makeTempDir(), "secret");
    writeFileSync(file, contents);
    let error: unknown;
    try {
      loadNotificationSecret({ dataDir: makeTempDir(), source: "auth_config.yml", secretFile: file });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems[0]?.path).toBe("notifications.secret_file");
    expect((error as ConfigError).message).toContain("16 to 1024 printable ASCII characters");
    // The message never quotes the file's contents.
    if (contents.length > 6) expect((error as ConfigError).message).not.toContain(contents.trim());
  });
});
