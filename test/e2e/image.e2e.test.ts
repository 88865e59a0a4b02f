/**
 * issue 12 item 8: the container image from scripts/build-image.ts (an OCI layout, no daemon).
 * It is pushed to the real registry with skopeo (both architectures), pulled back per
 * architecture, and run from the unpacked layer: amd64 in a chroot with only the image's files
 * (plus /proc and /dev, which every container runtime provides) as the image's user 65532, arm64
 * under qemu-user with the image's own loader and C library (-L). Without root or mount
 * namespaces (an unprivileged CI container), amd64 runs through the layer's own loader and
 * libraries instead of a chroot.
 */
import { describe, expect, it } from "bun:test";
import { mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { hashPassword, makeTempDir } from "../helpers.ts";
import { fetchToken, freePort, Output, run, startRegauth, startRegistry, waitForHttp } from "./harness.ts";

const chroot = Bun.which("chroot");
const isRoot = process.getuid?.() === 0;
const canChroot = isRoot && chroot !== null && Bun.spawnSync(["unshare", "--mount", "true"]).exitCode === 0;
const canEmulate = Bun.which("qemu-aarch64-static") !== null;
if (!canChroot)
  console.warn(
    "image test: no root or no mount namespace here; amd64 runs through the layer's loader, not a chroot",
  );

interface ImageConfig {
  architecture: string;
  config: {
    User: string;
    Entrypoint: string[];
    Cmd: string[];
    Env: string[];
    Volumes: Record<string, object>;
    ExposedPorts: Record<string, object>;
  };
}

describe("the container image", async () => {
  const image = join(makeTempDir("image-"), "oci");
  const build = await run(["bun", "run", "scripts/build-image.ts", "--out", image], { timeoutMs: 300_000 });
  if (build.exitCode !== 0) throw new Error(`build-image failed:\n${build.stdout}\n${build.stderr}`);

  const regauth = await startRegauth({
    configYaml: `
server: {addr: "127.0.0.1:{{PORT}}"}
token: {issuer: e2e-issuer, services: [registry]}
users:
  ci:
    password: "${hashPassword("ci-secret")}"
acl:
  - match: {account: ci}
    actions: ["*"]
`,
  });
  const registry = await startRegistry({
    realm: `${regauth.url}/auth`,
    issuer: "e2e-issuer",
    service: "registry",
    certificatePath: regauth.certificatePath,
  });
  const reference = `docker://${registry.host}/ci/regauth:latest`;

  /** Pulls one architecture back into a fresh OCI layout; returns its config and unpacked layer. */
  async function pullAndUnpack(arch: string): Promise<{ config: ImageConfig; rootfs: string }> {
    const dir = makeTempDir(`pulled-${arch}-`);
    const pull = await run([
      "skopeo",
      "copy",
      "--src-tls-verify=false",
      "--src-creds",
      "ci:ci-secret",
      "--override-arch",
      arch,
      reference,
      `oci:${join(dir, "oci")}:latest`,
    ]);
    expect(pull.exitCode, pull.stderr).toBe(0);
    const blob = (digest: string) => join(dir, "oci/blobs/sha256", digest.replace("sha256:", ""));
    const index = JSON.parse(readFileSync(join(dir, "oci/index.json"), "utf8"));
    const manifest = JSON.parse(readFileSync(blob(index.manifests[0].digest), "utf8"));
    expect(manifest.layers).toHaveLength(1);
    const config = JSON.parse(readFileSync(blob(manifest.config.digest), "utf8")) as ImageConfig;
    const rootfs = join(dir, "rootfs");
    mkdirSync(rootfs);
    const owners = isRoot ? ["--same-owner"] : [];
    const untar = await run(["tar", ...owners, "-xzf", blob(manifest.layers[0].digest), "-C", rootfs]);
    expect(untar.exitCode, untar.stderr).toBe(0);
    return { config, rootfs };
  }

  it("is pushed to the registry with skopeo, both architectures under one tag", async () => {
    const push = await run([
      "skopeo",
      "copy",
      "--all",
      "--dest-tls-verify=false",
      "--dest-creds",
      "ci:ci-secret",
      `oci:${image}:latest`,
      reference,
    ]);
    expect(push.exitCode, push.stderr).toBe(0);
    const raw = await run([
      "skopeo",
      "inspect",
      "--raw",
      "--tls-verify=false",
      "--creds",
      "ci:ci-secret",
      reference,
    ]);
    const platforms = (
      JSON.parse(raw.stdout) as { manifests: { platform: { architecture: string } }[] }
    ).manifests.map((m) => m.platform.architecture);
    expect(platforms.sort()).toEqual(["amd64", "arm64"]);
  }, 120_000);

  it("amd64: runs as 65532 from the unpacked layer alone; serve keeps its data in the volume", async () => {
    const { config, rootfs } = await pullAndUnpack("amd64");
    expect(config.architecture).toBe("amd64");
    expect(config.config.User).toBe("65532:65532");
    expect(config.config.Entrypoint).toEqual(["/usr/local/bin/regauth", "serve"]);
    expect(config.config.Cmd).toEqual(["--addr", ":5001"]);
    expect(config.config.Volumes).toEqual({ "/var/lib/regauth": {} });
    expect(config.config.Env).toContain("STATE_DIRECTORY=/var/lib/regauth");
    expect(Object.keys(config.config.ExposedPorts)).toEqual(["5001/tcp"]);
    const dataDir = join(rootfs, "var/lib/regauth");
    if (isRoot) expect(statSync(dataDir).uid).toBe(65532);
    expect((statSync(dataDir).mode & 0o777).toString(8)).toBe("700");
    // Small: the binary, glibc's five files, three lines of /etc. No shell, no package manager.
    expect(readdirSync(rootfs).sort()).toEqual(["etc", "lib", "lib64", "tmp", "usr", "var"]);
    expect(readdirSync(join(rootfs, "lib/x86_64-linux-gnu")).sort()).toEqual([
      "libc.so.6",
      "libdl.so.2",
      "libm.so.6",
      "libpthread.so.0",
    ]);

    // What a container runtime does: its own /proc and /dev, the image's user, Env and Entrypoint.
    mkdirSync(join(rootfs, "proc"));
    mkdirSync(join(rootfs, "dev"));
    const port = await freePort();
    // A private mount namespace, so the mounts vanish with the process; no --fork, so every
    // step execs and the signal the test sends reaches regauth itself.
    const inChroot = (argv: string[]) => [
      "unshare",
      "--mount",
      "sh",
      "-c",
      `mount -t proc proc "$0/proc" && mount --bind /dev "$0/dev" && exec env -i ${config.config.Env.join(" ")} ${chroot} --userspec=${config.config.User} "$0" "$@"`,
      rootfs,
      ...argv,
    ];
    // The fallback: the host's kernel and /proc, but the layer's loader, C library and binary.
    const throughLoader = (argv: string[]) => [
      "env",
      "-i",
      ...config.config.Env.map((entry) => entry.replace("=/var/lib/regauth", `=${dataDir}`)),
      join(rootfs, "lib64/ld-linux-x86-64.so.2"),
      "--library-path",
      join(rootfs, "lib/x86_64-linux-gnu"),
      join(rootfs, argv[0] as string),
      ...argv.slice(1),
    ];
    const inContainer = canChroot ? inChroot : throughLoader;
    const version = await run(inContainer(["/usr/local/bin/regauth", "--version"]));
    expect(version.exitCode, version.stderr).toBe(0);
    expect(version.stdout).toMatch(/^regauth \d+\.\d+\.\d+/);

    // The Entrypoint with --addr in place of the image's Cmd (":5001" would be the host's port 5001).
    const proc = Bun.spawn(inContainer([...config.config.Entrypoint, "--addr", `127.0.0.1:${port}`]), {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    const stdout = new Output(proc.stdout);
    try {
      await waitForHttp(`http://127.0.0.1:${port}/healthz`, 30_000);
      const password = (await stdout.waitFor(/^password: (\S+)$/m))[1] as string;
      const token = await fetchToken(
        `http://127.0.0.1:${port}/auth`,
        { service: "registry", scopes: ["repository:admin/app:pull,push"] },
        `admin:${password}`,
      );
      expect(token.status, token.text).toBe(200);
      for (const file of ["regauth.db", "token.key", "token.crt"]) {
        expect(statSync(join(dataDir, file)).isFile()).toBe(true);
        if (canChroot) expect(statSync(join(dataDir, file)).uid).toBe(65532); // written as the image's user
      }
    } finally {
      proc.kill("SIGTERM");
      await proc.exited;
    }
  }, 120_000);

  it.skipIf(!canEmulate)(
    "arm64: the unpacked layer's own loader and C library run the binary",
    async () => {
      const { config, rootfs } = await pullAndUnpack("arm64");
      expect(config.architecture).toBe("arm64");
      const version = await run([
        "qemu-aarch64-static",
        "-L",
        rootfs,
        join(rootfs, "usr/local/bin/regauth"),
        "--version",
      ]);
      expect(version.exitCode, version.stderr).toBe(0);
      expect(version.stdout).toMatch(/^regauth \d+\.\d+\.\d+/);
    },
    120_000,
  );
});
