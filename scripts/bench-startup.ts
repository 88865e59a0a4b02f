/**
 * The start-up and footprint budget of `bun run bench` (issue 12, item 6): how long the compiled
 * binary takes to print its version, to run an offline CLI command and to be listening, and its
 * RSS when idle. Run before the load cases, on a quiet machine; each number with its target.
 */
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "../test/e2e/free-port.ts";

export const STARTUP_TARGETS = {
  versionMs: 50,
  offlineCliMs: 50,
  serveListeningMs: 150,
  idleRssMiB: 45,
};

export interface StartupCheck {
  what: string;
  ok: boolean;
  got: string;
}

export interface StartupResult {
  versionMs: number;
  offlineCliMs: number;
  serveListeningMs: number;
  idleRssMiB: number;
  /** The same measures for a bare `bun build --compile` of `console.log(1)`: Bun's own floor. */
  bareBunMs: number;
  bareBunRssMiB: number;
  checks: StartupCheck[];
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

/** Wall-clock milliseconds from spawn to exit of `argv`, which must succeed. */
async function runMs(argv: string[]): Promise<number> {
  const started = performance.now();
  const proc = Bun.spawn(argv, { stdout: "ignore", stderr: "pipe", stdin: "ignore" });
  const code = await proc.exited;
  const ms = performance.now() - started;
  if (code !== 0)
    throw new Error(`${argv.join(" ")} exited ${code}: ${await new Response(proc.stderr).text()}`);
  return ms;
}

async function medianRunMs(argv: string[], runs: number): Promise<number> {
  await runMs(argv); // page cache warm, as on a server that has run it before
  const times: number[] = [];
  for (let i = 0; i < runs; i++) times.push(await runMs(argv));
  return median(times);
}

function vmRssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
  if (kib === undefined) throw new Error(`no VmRSS for ${pid}`);
  return Number(kib) / 1024;
}

/** One `serve` on the embedded default and an existing data directory: ms until /healthz answers. */
async function serveOnce(binary: string, dataDir: string, settleMs: number) {
  const port = await freePort();
  const started = performance.now();
  const server = Bun.spawn([binary, "serve", "--data-dir", dataDir, "--addr", `127.0.0.1:${port}`], {
    stdout: "ignore",
    stderr: "pipe",
    stdin: "ignore",
  });
  try {
    for (;;) {
      const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (server.exitCode !== null || performance.now() - started > 10_000)
        throw new Error(`regauth serve did not start:\n${await new Response(server.stderr).text()}`);
      await Bun.sleep(1);
    }
    const listeningMs = performance.now() - started;
    // Idle: after the start-up work that runs just after listening (the failure-latency calibration).
    if (settleMs > 0) await Bun.sleep(settleMs);
    return { listeningMs, rssMiB: vmRssMiB(server.pid) };
  } finally {
    server.kill("SIGTERM");
    await server.exited;
  }
}

export async function measureStartup(binary: string, workDir: string): Promise<StartupResult> {
  mkdirSync(workDir, { recursive: true });
  const bareSource = join(workDir, "bare.ts");
  const bareBinary = join(workDir, "bare");
  await Bun.write(bareSource, "console.log(1);\n");
  const build = Bun.spawnSync(
    ["bun", "build", bareSource, "--compile", "--bytecode", `--outfile=${bareBinary}`],
    {
      stdout: "ignore",
      stderr: "inherit",
    },
  );
  if (build.exitCode !== 0) throw new Error("bun build of the bare binary failed");

  const dataDir = join(workDir, "startup-data");
  rmSync(dataDir, { recursive: true, force: true });
  // The first run creates the key and the database; the measured runs find them (an existing data dir).
  await runMs([binary, "registry-config", "--data-dir", dataDir]);

  console.log("==> start-up: --version, user list, serve (embedded default), idle RSS");
  const bareBunMs = await medianRunMs([bareBinary], 20);
  const versionMs = await medianRunMs([binary, "--version"], 20);
  const offlineCliMs = await medianRunMs([binary, "user", "list", "--data-dir", dataDir], 20);
  const serves = [];
  for (let i = 0; i < 11; i++) serves.push(await serveOnce(binary, dataDir, 0));
  const serveListeningMs = median(serves.slice(1).map((s) => s.listeningMs));
  const idleRssMiB = (await serveOnce(binary, dataDir, 2_000)).rssMiB;

  // console.log(1) exits at once, before /proc could be read: its peak RSS comes from time(1).
  const timed = Bun.spawnSync(["/usr/bin/time", "-f", "%M", bareBinary], {
    stdout: "ignore",
    stderr: "pipe",
  });
  const bareBunRssMiB = Number(timed.stderr.toString().trim().split("\n").at(-1)) / 1024;

  const checks: StartupCheck[] = [
    {
      what: `regauth --version ≤ ${STARTUP_TARGETS.versionMs} ms`,
      ok: versionMs <= STARTUP_TARGETS.versionMs,
      got: `${versionMs.toFixed(0)} ms, median of 20; a bare compiled Bun binary ${bareBunMs.toFixed(0)} ms`,
    },
    {
      what: `offline CLI command (regauth user list --data-dir D) ≤ ${STARTUP_TARGETS.offlineCliMs} ms`,
      ok: offlineCliMs <= STARTUP_TARGETS.offlineCliMs,
      got: `${offlineCliMs.toFixed(0)} ms, median of 20`,
    },
    {
      what: `serve listening ≤ ${STARTUP_TARGETS.serveListeningMs} ms after exec`,
      ok: serveListeningMs <= STARTUP_TARGETS.serveListeningMs,
      got: `${serveListeningMs.toFixed(0)} ms to the first /healthz answer, median of 10, embedded default, existing data dir`,
    },
    {
      what: `idle RSS ≤ ${STARTUP_TARGETS.idleRssMiB} MiB`,
      ok: idleRssMiB <= STARTUP_TARGETS.idleRssMiB,
      got: `${idleRssMiB.toFixed(1)} MiB 2 s after listening, embedded default; a bare compiled Bun binary peaks at ${bareBunRssMiB.toFixed(1)} MiB`,
    },
  ];
  for (const check of checks) console.log(`    ${check.ok ? "ok  " : "MISS"} ${check.what}: ${check.got}`);
  return { versionMs, offlineCliMs, serveListeningMs, idleRssMiB, bareBunMs, bareBunRssMiB, checks };
}

/** `bun scripts/bench-startup.ts`: this section alone, on dist/regauth (built by `bun run build`). */
if (import.meta.main) {
  const root = join(import.meta.dir, "..");
  const result = await measureStartup(join(root, "dist/regauth"), join(root, ".tmp/bench"));
  process.exit(result.checks.every((c) => c.ok) ? 0 : 1);
}
