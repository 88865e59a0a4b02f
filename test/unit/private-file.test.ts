/** Generated files are written atomically, 0600, and never through a planted name (issue 9 item 4, issue 8 L4). */
import { describe, expect, it } from "bun:test";
import {
  existsSync,
  lstatSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { readPrivateFile, writePrivateFile } from "../../src/fs/private-file.ts";
import { makeTempDir } from "../helpers.ts";

describe("writePrivateFile", () => {
  it("writes the bytes with mode 0600 whatever the umask, and leaves no temporary file", () => {
    const dir = makeTempDir();
    const previous = process.umask(0);
    try {
      writePrivateFile(join(dir, "secret"), "hello", { exclusive: true });
    } finally {
      process.umask(previous);
    }
    expect(readFileSync(join(dir, "secret"), "utf8")).toBe("hello");
    expect(statSync(join(dir, "secret")).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(["secret"]);
  });

  it("exclusive: refuses an existing file and keeps it", () => {
    const dir = makeTempDir();
    writeFileSync(join(dir, "secret"), "old");
    expect(() => writePrivateFile(join(dir, "secret"), "new", { exclusive: true })).toThrow(/EEXIST/);
    expect(readFileSync(join(dir, "secret"), "utf8")).toBe("old");
    expect(readdirSync(dir)).toEqual(["secret"]);
  });

  it("exclusive: never writes through a planted symlink, dangling or not", () => {
    const dir = makeTempDir();
    const target = join(makeTempDir(), "victim");
    symlinkSync(target, join(dir, "token.key"));
    expect(() => writePrivateFile(join(dir, "token.key"), "key", { exclusive: true })).toThrow(/EEXIST/);
    expect(existsSync(target)).toBe(false);
    writeFileSync(target, "precious");
    expect(() => writePrivateFile(join(dir, "token.key"), "key", { exclusive: true })).toThrow(/EEXIST/);
    expect(readFileSync(target, "utf8")).toBe("precious");
  });

  it("replacing: swaps the name for a new file, replacing a symlink itself rather than its target", () => {
    const dir = makeTempDir();
    const target = join(makeTempDir(), "victim");
    writeFileSync(target, "precious");
    symlinkSync(target, join(dir, "file"));
    writePrivateFile(join(dir, "file"), "new", { exclusive: false });
    expect(lstatSync(join(dir, "file")).isSymbolicLink()).toBe(false);
    expect(readFileSync(join(dir, "file"), "utf8")).toBe("new");
    expect(readFileSync(target, "utf8")).toBe("precious");
  });

  it("a directory that cannot be written leaves nothing behind", () => {
    expect(() => writePrivateFile(join(makeTempDir(), "missing", "x"), "x", { exclusive: true })).toThrow(
      /ENOENT/,
    );
  });
});

describe("readPrivateFile (review finding 10)", () => {
  const dir = makeTempDir("read-private-");
  writeFileSync(join(dir, "key"), "secret");
  symlinkSync(join(dir, "key"), join(dir, "link"));
  Bun.spawnSync(["mkfifo", join(dir, "fifo")]);

  it("reads a regular file", () => {
    expect(readPrivateFile(join(dir, "key")).toString()).toBe("secret");
  });
  it("never follows a symlink", () => {
    expect(() => readPrivateFile(join(dir, "link"))).toThrow(/link is a symbolic link/);
  });
  it("does not block on a planted FIFO", () => {
    expect(() => readPrivateFile(join(dir, "fifo"))).toThrow(/not a regular file/);
  });
  it("a missing file is ENOENT", () => {
    expect(() => readPrivateFile(join(dir, "missing"))).toThrow(/ENOENT|no such file/i);
  });
});
