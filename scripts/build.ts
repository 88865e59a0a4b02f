// Builds the single self-contained binary (bun build --compile).
//
//   bun run build                       dist/regauth for this machine (REGAUTH_TARGET, REGAUTH_OUTFILE
//                                       pick another target or file)
//   bun run build --target linux-arm64  dist/regauth-linux-arm64 (also linux-x64, linux-x64-baseline)
//   bun run build --release             all three release binaries and dist/SHA256SUMS
//
// A cross build needs Bun's runtime for the target: bun downloads it from the npm registry once
// (~35 MB, package @oven/bun-<target>) and keeps it in ~/.bun/install/cache.
import { createHash } from "node:crypto";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename } from "node:path";
import pkg from "../package.json" with { type: "json" };
import { recordBytecodeOrder } from "./lib/bytecode-order.ts";

/** Release targets: name in dist/ → bun's --target. x64-baseline runs on CPUs without AVX2. */
export const RELEASE_TARGETS = {
  "linux-x64": "bun-linux-x64",
  "linux-x64-baseline": "bun-linux-x64-baseline",
  "linux-arm64": "bun-linux-arm64",
} as const;
type ReleaseTarget = keyof typeof RELEASE_TARGETS;

/** The JIT policy the executable starts with (Bun's --compile-jit-policy; 1 is the normal one). */
const STARTUP_JIT_POLICY = 10;

function compile(outfile: string, target: string | undefined, bytecodeOrder: readonly string[] = []): void {
  const args = [
    "build",
    "src/main.ts",
    "--compile",
    // Precompiled bytecode: JavaScriptCore skips parsing the bundle at every start, which cut
    // `regauth --version` from ~125 ms to ~40 ms here (issue 12 item 6; scripts/bench.ts reports it).
    "--bytecode",
    // What serve and the CLI use first, together at the bundle's front (scripts/lib/bytecode-order.ts).
    ...(bytecodeOrder.length > 0 ? [`--bytecode-order=${bytecodeOrder.join(",")}`] : []),
    // JIT tier-up thresholds ×10 until serve has started (it then calls Bun.unsafe.setJITPolicy(1),
    // src/main.ts): code run once at start is not compiled for nothing. Idle VmRSS -3.5 MiB here,
    // tokens/s unchanged (issue 12 item 6); CLI commands, short-lived, keep the scaled thresholds.
    `--compile-jit-policy=${STARTUP_JIT_POLICY}`,
    "--minify-syntax",
    "--minify-whitespace",
    "--sourcemap=none",
    `--define=REGAUTH_VERSION=${JSON.stringify(pkg.version)}`,
    // An appliance reads only its own config file, never a stray .env or bunfig.toml at run time.
    "--no-compile-autoload-dotenv",
    "--no-compile-autoload-bunfig",
    `--outfile=${outfile}`,
    ...(target ? [`--target=${target}`] : []),
  ];
  const proc = Bun.spawnSync(["bun", ...args], { stdout: "inherit", stderr: "inherit" });
  if (proc.exitCode !== 0) {
    console.error(`build of ${outfile} failed`);
    process.exit(proc.exitCode ?? 1);
  }
}

/**
 * Compiles a build for this machine, runs it the recorded ways and returns their order files,
 * for every target of this run: they are the same source's bytecode (Bun's docs: even a profile
 * from an older build applies). A recording that fails costs only the layout: the build goes on
 * without it, and says so.
 */
async function withBytecodeOrder(build: (order: readonly string[]) => void): Promise<void> {
  const profileBinary = "dist/.regauth-bytecode-profile";
  compile(profileBinary, undefined);
  let order: Awaited<ReturnType<typeof recordBytecodeOrder>> | null = null;
  try {
    order = await recordBytecodeOrder(profileBinary);
  } catch (error) {
    console.error(`warning: bytecode order not recorded, building without it: ${(error as Error).message}`);
  } finally {
    rmSync(profileBinary, { force: true });
  }
  try {
    build(order?.files ?? []);
  } finally {
    order?.cleanUp();
  }
}

function isReleaseTarget(name: string): name is ReleaseTarget {
  return Object.hasOwn(RELEASE_TARGETS, name);
}

const argv = process.argv.slice(2);
if (argv[0] === "--release" && argv.length === 1) {
  await withBytecodeOrder((order) => {
    const outfiles = Object.entries(RELEASE_TARGETS).map(([name, target]) => {
      const outfile = `dist/regauth-${name}`;
      compile(outfile, target, order);
      return outfile;
    });
    const sums = outfiles.map(
      (file) => `${createHash("sha256").update(readFileSync(file)).digest("hex")}  ${basename(file)}\n`,
    );
    writeFileSync("dist/SHA256SUMS", sums.join(""));
  });
} else if (argv[0] === "--target" && argv.length === 2) {
  const name = argv[1] as string;
  if (!isReleaseTarget(name)) {
    console.error(`unknown target ${name}; one of ${Object.keys(RELEASE_TARGETS).join(", ")}`);
    process.exit(2);
  }
  await withBytecodeOrder((order) => compile(`dist/regauth-${name}`, RELEASE_TARGETS[name], order));
} else if (argv.length === 0) {
  await withBytecodeOrder((order) =>
    compile(process.env.REGAUTH_OUTFILE ?? "dist/regauth", process.env.REGAUTH_TARGET, order),
  );
} else {
  console.error("usage: bun run build [--release | --target linux-x64|linux-x64-baseline|linux-arm64]");
  process.exit(2);
}
