// Builds regauth's container image as an OCI image layout, without a Docker daemon or buildah:
// one layer with the binary, the C library it links against (glibc: libc, libm, libpthread, libdl
// and the loader; nothing else, `ldd dist/regauth`), /etc/passwd and /etc/group naming the
// unprivileged user 65532, and the data directory /var/lib/regauth (a volume, owned by 65532).
//
//   bun run image                         dist/image: linux/amd64 and linux/arm64 under one index
//   bun run image --arch amd64 --out DIR  one architecture, another directory
//
// Push it with skopeo:  skopeo copy --all oci:dist/image:latest docker://HOST/regauth:latest
// The amd64 libraries come from this machine (/lib/x86_64-linux-gnu), the arm64 ones from
// Debian's libc6-arm64-cross (/usr/aarch64-linux-gnu). Timestamps are SOURCE_DATE_EPOCH (else
// 0) and entries are sorted, so the same inputs give the same digests.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pkg from "../package.json" with { type: "json" };

/** The unprivileged user the image runs as (distroless's "nonroot" number). */
const USER_ID = 65532;
const DATA_DIR = "/var/lib/regauth";
const BINARY_PATH = "/usr/local/bin/regauth";
const GLIBC_LIBRARIES = ["libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2"];

interface Architecture {
  /** bun run build --target NAME */
  buildTarget: string;
  /** [path in the image, file on this machine] for the loader. */
  loader: [string, string];
  libraryDir: string;
  hostLibraryDir: string;
  copyright: string;
}

const ARCHITECTURES: Record<string, Architecture> = {
  amd64: {
    buildTarget: "linux-x64",
    loader: ["/lib64/ld-linux-x86-64.so.2", "/lib64/ld-linux-x86-64.so.2"],
    libraryDir: "/lib/x86_64-linux-gnu",
    hostLibraryDir: "/lib/x86_64-linux-gnu",
    copyright: "/usr/share/doc/libc6/copyright",
  },
  arm64: {
    buildTarget: "linux-arm64",
    loader: ["/lib/ld-linux-aarch64.so.1", "/usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1"],
    libraryDir: "/lib/aarch64-linux-gnu",
    hostLibraryDir: "/usr/aarch64-linux-gnu/lib",
    copyright: "/usr/share/doc/libc6-arm64-cross/copyright",
  },
};

interface TarEntry {
  path: string; // absolute, as in the image
  kind: "file" | "directory";
  mode: number;
  owner?: number;
  data?: Uint8Array;
}

const mtimeSeconds = Number(process.env.SOURCE_DATE_EPOCH ?? 0);

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, "0")}\0`;
}

/** A POSIX ustar archive; names stay under 100 bytes, so no prefix or pax headers are needed. */
function tar(entries: TarEntry[]): Buffer<ArrayBuffer> {
  const blocks: Uint8Array[] = [];
  for (const entry of [...entries].sort((a, b) => a.path.localeCompare(b.path))) {
    const name = entry.path.slice(1) + (entry.kind === "directory" ? "/" : "");
    if (Buffer.byteLength(name) > 99) throw new Error(`path too long for ustar: ${name}`);
    const data = entry.data ?? new Uint8Array();
    const header = Buffer.alloc(512);
    header.write(name, 0);
    header.write(octal(entry.mode, 8), 100);
    header.write(octal(entry.owner ?? 0, 8), 108);
    header.write(octal(entry.owner ?? 0, 8), 116);
    header.write(octal(entry.kind === "file" ? data.length : 0, 12), 124);
    header.write(octal(mtimeSeconds, 12), 136);
    header.write("        ", 148); // checksum field counts as spaces while summing
    header.write(entry.kind === "file" ? "0" : "5", 156);
    header.write("ustar\0", 257);
    header.write("00", 263);
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
    blocks.push(header);
    if (entry.kind === "file") {
      blocks.push(data);
      blocks.push(new Uint8Array((512 - (data.length % 512)) % 512));
    }
  }
  blocks.push(new Uint8Array(1024));
  return Buffer.concat(blocks);
}

function rootfs(arch: Architecture, binary: string): TarEntry[] {
  const directory = (path: string, mode = 0o755, owner = 0): TarEntry => ({
    path,
    kind: "directory",
    mode,
    owner,
  });
  const file = (path: string, data: Uint8Array | string, mode = 0o644): TarEntry => ({
    path,
    kind: "file",
    mode,
    data: typeof data === "string" ? Buffer.from(data) : data,
  });
  const hostFile = (path: string) => readFileSync(realpathSync(path));
  const entries: TarEntry[] = [
    file(BINARY_PATH, readFileSync(binary), 0o755),
    file(arch.loader[0], hostFile(arch.loader[1]), 0o755),
    ...GLIBC_LIBRARIES.map((name) =>
      file(`${arch.libraryDir}/${name}`, hostFile(join(arch.hostLibraryDir, name))),
    ),
    file("/usr/share/doc/libc6/copyright", hostFile(arch.copyright)),
    file(
      "/etc/passwd",
      `root:x:0:0:root:/root:/sbin/nologin\nregauth:x:${USER_ID}:${USER_ID}:regauth:${DATA_DIR}:/sbin/nologin\n`,
    ),
    file("/etc/group", `root:x:0:\nregauth:x:${USER_ID}:\n`),
    file("/etc/nsswitch.conf", "hosts: files dns\n"),
    directory("/etc/regauth"), // mount a config here: --config /etc/regauth/config.yml
    directory("/tmp", 0o1777),
    // A named volume starts as a copy of this directory, owner and mode included.
    directory(DATA_DIR, 0o700, USER_ID),
  ];
  // Every parent directory, root-owned 0755.
  const paths = new Set(entries.map((e) => e.path));
  for (const entry of [...entries]) {
    for (
      let parent = entry.path.replace(/\/[^/]+$/, "");
      parent !== "";
      parent = parent.replace(/\/[^/]+$/, "")
    ) {
      if (!paths.has(parent)) {
        paths.add(parent);
        entries.push(directory(parent));
      }
    }
  }
  return entries;
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function main(): void {
  const argv = process.argv.slice(2);
  let out = "dist/image";
  let arches = Object.keys(ARCHITECTURES);
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1];
    if (argv[i] === "--out" && value) [out, i] = [value, i + 1];
    else if (argv[i] === "--arch" && value && value.split(",").every((a) => a in ARCHITECTURES))
      [arches, i] = [value.split(","), i + 1];
    else {
      console.error(
        `usage: bun run image [--arch ${Object.keys(ARCHITECTURES).join("|")}[,...]] [--out DIR]`,
      );
      process.exit(2);
    }
  }
  rmSync(out, { recursive: true, force: true });
  mkdirSync(join(out, "blobs/sha256"), { recursive: true });
  const put = (bytes: Uint8Array, mediaType: string) => {
    const hex = sha256(bytes);
    writeFileSync(join(out, "blobs/sha256", hex), bytes);
    return { mediaType, digest: `sha256:${hex}`, size: bytes.length };
  };
  const created = new Date(mtimeSeconds * 1000).toISOString();
  const manifests = arches.map((name) => {
    const arch = ARCHITECTURES[name] as Architecture;
    const binary = `dist/regauth-${arch.buildTarget}`;
    // Always rebuilt, so the image never carries a stale binary.
    const build = Bun.spawnSync(["bun", "run", "scripts/build.ts", "--target", arch.buildTarget], {
      stdout: "inherit",
      stderr: "inherit",
    });
    if (build.exitCode !== 0 || !existsSync(binary)) throw new Error(`building ${binary} failed`);
    const layerTar = tar(rootfs(arch, binary));
    const layer = put(Bun.gzipSync(layerTar), "application/vnd.oci.image.layer.v1.tar+gzip");
    const config = put(
      Buffer.from(
        JSON.stringify({
          created,
          architecture: name,
          os: "linux",
          config: {
            User: `${USER_ID}:${USER_ID}`,
            Entrypoint: [BINARY_PATH, "serve"],
            // Inside a container, loopback is unreachable from outside: listen on every interface.
            // Replaced by whatever follows the image name (e.g. --config /etc/regauth/config.yml).
            Cmd: ["--addr", ":5001"],
            Env: ["PATH=/usr/local/bin", `STATE_DIRECTORY=${DATA_DIR}`],
            ExposedPorts: { "5001/tcp": {} },
            Volumes: { [DATA_DIR]: {} },
            WorkingDir: DATA_DIR,
            Labels: {
              "org.opencontainers.image.title": "regauth",
              "org.opencontainers.image.description": pkg.description,
              "org.opencontainers.image.version": pkg.version,
            },
          },
          rootfs: { type: "layers", diff_ids: [`sha256:${sha256(layerTar)}`] },
          history: [{ created, created_by: "scripts/build-image.ts" }],
        }),
      ),
      "application/vnd.oci.image.config.v1+json",
    );
    const manifest = put(
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          config,
          layers: [layer],
        }),
      ),
      "application/vnd.oci.image.manifest.v1+json",
    );
    console.log(
      `linux/${name}: layer ${(layer.size / 1024 / 1024).toFixed(1)} MiB compressed, ${manifest.digest}`,
    );
    return { ...manifest, platform: { architecture: name, os: "linux" } };
  });
  const index = put(
    Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests }),
    ),
    "application/vnd.oci.image.index.v1+json",
  );
  writeFileSync(join(out, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  const tagged = (tag: string) => ({ ...index, annotations: { "org.opencontainers.image.ref.name": tag } });
  writeFileSync(
    join(out, "index.json"),
    JSON.stringify({ schemaVersion: 2, manifests: [tagged("latest"), tagged(pkg.version)] }),
  );
  console.log(
    `${out}: tags latest and ${pkg.version}; push: skopeo copy --all oci:${out}:latest docker://HOST/regauth:latest`,
  );
}

main();
