/**
 * issue 12 item 8: the linux-arm64 (Raspberry Pi) binary from `bun run build --target linux-arm64`,
 * run under qemu-user (Debian's qemu-user-static, with the arm64 C library from
 * libc6-arm64-cross): `--version`, then `serve` issuing a token the real registry accepts.
 */
import { describe, expect, it } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { hashPassword, makeTempDir } from "../helpers.ts";
import {
  BINARY,
  ensureBinary,
  fetchToken,
  freePort,
  makeOciImage,
  Output,
  REPO_ROOT,
  run,
  skopeoPush,
  startRegistry,
  waitForHttp,
} from "./harness.ts";

const ARM64_BINARY = join(REPO_ROOT, "dist/regauth-linux-arm64");
/** Where libc6-arm64-cross puts the arm64 loader and libraries; qemu's -L prefix. */
const ARM64_SYSROOT = "/usr/aarch64-linux-gnu";
const canEmulate =
  Bun.which("qemu-aarch64-static") !== null && existsSync(join(ARM64_SYSROOT, "lib/ld-linux-aarch64.so.1"));
if (!canEmulate)
  console.warn(
    "SKIPPED: arm64 tests need qemu-user-static and libc6-arm64-cross (scripts/lib/ensure-tools.sh)",
  );

const qemu = (args: string[]) => ["qemu-aarch64-static", "-L", ARM64_SYSROOT, ARM64_BINARY, ...args];

describe.skipIf(!canEmulate)("the linux-arm64 binary under qemu-user", () => {
  it("builds (the target runtime comes from npm, cached) and prints the same version", async () => {
    // Always rebuilt: a stale arm64 binary would test old code. ~1 s once Bun's cache has the runtime.
    const build = await run(["bun", "run", "build", "--target", "linux-arm64"], { timeoutMs: 120_000 });
    expect(build.exitCode, build.stderr).toBe(0);
    // ELF e_machine (offset 18, little-endian) 183 = EM_AARCH64.
    const header = new Uint8Array(await Bun.file(ARM64_BINARY).slice(0, 20).arrayBuffer());
    expect((header[18] ?? 0) | ((header[19] ?? 0) << 8)).toBe(183);
    const version = await run(qemu(["--version"]));
    expect(version.exitCode, version.stderr).toBe(0);
    ensureBinary();
    expect(version.stdout).toBe((await run([BINARY, "--version"])).stdout);
  }, 180_000);

  it("serves a token that the real registry accepts for a push", async () => {
    const dir = makeTempDir("arm64-");
    const configPath = join(dir, "auth_config.yml");
    await Bun.write(
      configPath,
      `token: {issuer: arm64-issuer, services: [registry]}\nusers:\n  alice:\n    password: "${hashPassword("alice-secret")}"\nacl:\n  - match: {account: alice}\n    actions: ["*"]\n`,
    );
    const port = await freePort();
    const proc = Bun.spawn(
      qemu(["serve", "--config", configPath, "--data-dir", join(dir, "data"), "--addr", `127.0.0.1:${port}`]),
      { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } },
    );
    const stderr = new Output(proc.stderr);
    try {
      await stderr.waitFor(/msg="regauth listening"/, 90_000);
      const url = `http://127.0.0.1:${port}`;
      await waitForHttp(`${url}/healthz`, 30_000);
      const token = await fetchToken(
        `${url}/auth`,
        { service: "registry", scopes: ["repository:alice/app:pull,push"] },
        "alice:alice-secret",
      );
      expect(token.status, token.text).toBe(200);
      const registry = await startRegistry({
        realm: `${url}/auth`,
        issuer: "arm64-issuer",
        service: "registry",
        certificatePath: join(dir, "data/token.crt"),
      });
      const push = await skopeoPush(
        makeOciImage("arm64\n"),
        `${registry.host}/alice/app:v1`,
        "alice:alice-secret",
      );
      expect(push.stderr).toBe("");
      expect(push.exitCode).toBe(0);
    } finally {
      proc.kill("SIGTERM");
      await proc.exited;
    }
  }, 180_000);
});
