/** `regauth key rotate|list` (src/cli/key.ts) over a fake terminal: arguments, configured keys, output. */
import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { prepareConfig } from "../../src/config/load.ts";
import { databasePath, openDatabase } from "../../src/db/database.ts";
import { keyCommand } from "../../src/cli/key.ts";
import type { CommandIo } from "../../src/cli/command-io.ts";
import type { LoadedConfig } from "../../src/config/load.ts";
import { loadTestConfig, makeTempDir } from "../helpers.ts";
import { makeKey } from "../key-fixtures.ts";

function fakeIo(nowMs = Date.now()) {
  const out: string[] = [];
  const io = {
    out: (text: string) => out.push(text),
    err: (text: string) => out.push(text),
    nowMs: () => nowMs,
  } as unknown as CommandIo;
  return { io, out };
}

const args = (...positionals: string[]) => ({ positionals, flags: new Map() }) as never;

describe("regauth key", () => {
  test.each([[[]], [["spin"]], [["rotate", "extra"]]])("%j is a usage error", async (positionals) => {
    const loaded = await loadTestConfig({});
    await expect(keyCommand(args(...positionals), fakeIo().io, async () => loaded)).rejects.toThrow(
      /expected rotate or list|unexpected argument/,
    );
  });

  test("rotate, then list: next key with its activation; a second rotate is refused", async () => {
    const loaded = await loadTestConfig({ token: { issuer: "i", rotation_overlap_seconds: 600 } });
    const now = Date.now();
    const { io, out } = fakeIo(now);
    expect(await keyCommand(args("rotate"), io, async () => loaded)).toBe(0);
    expect(out.join("")).toContain("Restart every registry");
    await expect(keyCommand(args("rotate"), io, async () => loaded)).rejects.toThrow("already waiting");
    out.length = 0;
    expect(await keyCommand(args("list"), io, async () => loaded)).toBe(0);
    const lines = out.join("").trim().split("\n");
    expect(lines[0]).toBe("KID\tSTATE\tFILE\tCREATED\tACTIVATES\tRETIRES\tUNPUBLISHED");
    expect(lines[1]).toMatch(/^[A-Z2-7:]+\tcurrent\ttoken\t/);
    const activates = new Date(Math.floor(now / 1000) * 1000 + 600_000).toISOString().replace(".000Z", "Z");
    expect(lines[2]).toContain(`\tnext\ttoken-1\t`);
    expect(lines[2]).toContain(`\t${activates}\t`);
  });

  test("list after the switch and after the old key left the set: retired, then expired", async () => {
    const loaded = await loadTestConfig({
      token: { issuer: "i", expiration: 300, rotation_overlap_seconds: 600 },
    });
    const now = Date.now();
    expect(await keyCommand(args("rotate"), fakeIo(now).io, async () => loaded)).toBe(0);
    const listAt = async (ms: number) => {
      const { io, out } = fakeIo(ms);
      await keyCommand(args("list"), io, async () => loaded);
      return out
        .join("")
        .trim()
        .split("\n")
        .slice(1)
        .map((line) => line.split("\t")[1]);
    };
    expect(await listAt(now + 601_000)).toEqual(["retired", "current"]);
    expect(await listAt(now + (600 + 300 + 60 + 1) * 1000)).toEqual(["expired", "current"]);
  });

  test("a key named in the config is not rotated here; the message says what to do", async () => {
    const key = makeKey({ kind: "ec", curve: "P-256", encoding: "pkcs8" });
    const loaded: LoadedConfig = await loadTestConfig({
      token: { issuer: "i", key: key.keyPath, certificate: key.certificatePath },
    });
    await expect(keyCommand(args("rotate"), fakeIo().io, async () => loaded)).rejects.toThrow(
      "Rotating the signing key",
    );
    const { io, out } = fakeIo();
    expect(await keyCommand(args("list"), io, async () => loaded)).toBe(0);
    expect(out.join("")).toContain("current");
  });

  test("list is read-only: it loads without creating files, and a missing data directory is an error", async () => {
    const dataDir = join(makeTempDir(), "regauth-data");
    const calls: unknown[] = [];
    const load = async (_args: unknown, createFiles: boolean) => {
      calls.push(createFiles);
      return prepareConfig({ token: { issuer: "i" } }, "test config", { dataDir, env: {}, createFiles });
    };
    const failure = keyCommand(args("list"), fakeIo().io, load);
    await expect(failure).rejects.toThrow(`no signing key in ${dataDir}`);
    await expect(keyCommand(args("list"), fakeIo().io, load)).rejects.toThrow(/--data-dir DIR|--config FILE/);
    expect(calls).toEqual([false, false]);
    expect(existsSync(dataDir)).toBe(false);
  });

  test("list reads the keys of an existing data directory without creating files", async () => {
    const dataDir = join(makeTempDir(), "regauth-data");
    const created = await loadTestConfig({ token: { issuer: "i" } }, dataDir);
    const load = async (_args: unknown, createFiles: boolean) =>
      prepareConfig({ token: { issuer: "i" } }, "test config", { dataDir, env: {}, createFiles });
    const { io, out } = fakeIo();
    expect(await keyCommand(args("list"), io, load)).toBe(0);
    expect(out.join("")).toContain(`${created.signingKey?.kid}\tcurrent\ttoken\t`);
  });

  test("rotate where serve never ran is refused: no data directory, key or rotation is created", async () => {
    const dataDir = join(makeTempDir(), "regauth-data");
    const load = async (_args: unknown, createFiles: boolean) =>
      prepareConfig({ token: { issuer: "i" } }, "test config", { dataDir, env: {}, createFiles });
    await expect(keyCommand(args("rotate"), fakeIo().io, load)).rejects.toThrow(
      `no signing key in ${dataDir} (no such directory): regauth key rotate`,
    );
    expect(existsSync(dataDir)).toBe(false);
  });

  test("rotate in an existing data directory creates the next key", async () => {
    const dataDir = join(makeTempDir(), "regauth-data");
    // What a first serve leaves: the generated key and the database.
    await loadTestConfig({ token: { issuer: "i" } }, dataDir);
    openDatabase(databasePath(dataDir)).close();
    const load = async (_args: unknown, createFiles: boolean) =>
      prepareConfig({ token: { issuer: "i" } }, "test config", { dataDir, env: {}, createFiles });
    expect(await keyCommand(args("rotate"), fakeIo().io, load)).toBe(0);
    expect(existsSync(join(dataDir, "token-1.key"))).toBe(true);
  });
});
