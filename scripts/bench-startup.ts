/**
 * The start-up and footprint budget of `bun run bench` (issue 12, item 6): how long the compiled
 * binary takes to print its version, to run an offline CLI command and to be listening, and its
 * RSS when idle. Run before the load cases, on a quiet machine; each number with its target.
 */
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { QUIET_SECONDS_BEFORE_RELEASE } from "../src/ops/heap-budget.ts";
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
  /** Where the idle RSS is (issue 12 item 6): anonymous and file pages, and the start-up peak. */
  idle: Footprint;
  /** The same serve once start-up's memory is handed back (QuietRelease, src/ops/heap-budget.ts). */
  settled: Footprint;
  /** The same measures for a bare `bun build --compile` of `console.log(1)`: Bun's own floor. */
  bareBunMs: number;
  bareBunRssMiB: number;
  /**
   * Idle RSS of a compiled program that only does what every serve does, with none of regauth's
   * code: Bun.serve, a bun:sqlite database in WAL mode and one Worker (the background writer's).
   */
  runtimeFloor: Footprint;
  checks: StartupCheck[];
}

/** A process's resident set from /proc, in MiB. */
export interface Footprint {
  vmRssMiB: number;
  rssAnonMiB: number;
  rssFileMiB: number;
  /** The highest VmRSS since exec: the start-up peak, for an idle process. */
  vmHwmMiB: number;
  /** Resident pages of the executable's own mappings: Bun's code and the embedded bundle. */
  executableMiB: number;
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

export function footprint(pid: number, executable: string): Footprint {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const field = (name: string) => {
    const kib = new RegExp(`^${name}:\\s+(\\d+) kB$`, "m").exec(status)?.[1];
    if (kib === undefined) throw new Error(`no ${name} for ${pid}`);
    return Number(kib) / 1024;
  };
  // smaps: a mapping's header line ends with its path; its Rss line follows.
  const path = resolve(executable);
  let executableKiB = 0;
  let inExecutable = false;
  for (const line of readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n")) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) inExecutable = line.endsWith(path);
    else if (inExecutable && line.startsWith("Rss:")) executableKiB += Number(/\d+/.exec(line)?.[0] ?? 0);
  }
  return {
    vmRssMiB: field("VmRSS"),
    rssAnonMiB: field("RssAnon"),
    rssFileMiB: field("RssFile"),
    vmHwmMiB: field("VmHWM"),
    executableMiB: executableKiB / 1024,
  };
}

const mib = (value: number) => value.toFixed(1);

function describe(f: Footprint): string {
  return `RssAnon ${mib(f.rssAnonMiB)} + RssFile ${mib(f.rssFileMiB)}, of which ${mib(f.executableMiB)} the executable's own pages`;
}

/** What `runtimeFloor` runs: Bun.serve, bun:sqlite in WAL mode and one idle Worker, then waits. */
const RUNTIME_FLOOR_SOURCE = `import { Database } from "bun:sqlite";
const db = new Database(process.argv[2] + "/floor.db", { create: true });
db.run("PRAGMA journal_mode = WAL");
db.run("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY)");
db.query("SELECT count(*) FROM t").get();
const worker = new Worker(URL.createObjectURL(new Blob(["self.onmessage = () => {};"], { type: "application/javascript" })));
worker.unref();
Bun.serve({ hostname: "127.0.0.1", port: Number(process.argv[3]), fetch: () => new Response("ok") });
`;

async function waitForHealthz(url: string, proc: { exitCode: number | null; stderr: unknown }) {
  const started = performance.now();
  for (;;) {
    const ok = await fetch(url).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    if (proc.exitCode !== null || performance.now() - started > 10_000)
      throw new Error(`${url} did not answer:\n${await new Response(proc.stderr as ReadableStream).text()}`);
    await Bun.sleep(1);
  }
}

async function runtimeFloor(workDir: string, settleMs: number): Promise<Footprint> {
  const source = join(workDir, "runtime-floor.ts");
  const binary = join(workDir, "runtime-floor");
  await Bun.write(source, RUNTIME_FLOOR_SOURCE);
  const build = Bun.spawnSync(["bun", "build", source, "--compile", "--bytecode", `--outfile=${binary}`], {
    stdout: "ignore",
    stderr: "inherit",
  });
  if (build.exitCode !== 0) throw new Error("bun build of the runtime floor failed");
  const dir = join(workDir, "runtime-floor-data");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const proc = Bun.spawn([binary, dir, String(port)], { stdout: "ignore", stderr: "pipe", stdin: "ignore" });
  try {
    await waitForHealthz(`http://127.0.0.1:${port}/`, proc);
    await Bun.sleep(settleMs);
    return footprint(proc.pid, binary);
  } finally {
    proc.kill("SIGTERM");
    await proc.exited;
  }
}

/** One `serve` on the embedded default and an existing data directory: ms until /healthz answers. */
async function serveOnce(binary: string, dataDir: string, settleMs: number, settledMs = 0) {
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
    const idle = footprint(server.pid, binary);
    // Settled: after the quiet seconds that hand start-up's memory back (src/ops/heap-budget.ts).
    if (settledMs > settleMs) await Bun.sleep(settledMs - settleMs);
    return {
      listeningMs,
      footprint: idle,
      settled: settledMs > settleMs ? footprint(server.pid, binary) : idle,
    };
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
  const idleServe = await serveOnce(binary, dataDir, 2_000, (QUIET_SECONDS_BEFORE_RELEASE + 3) * 1000);
  const idle = idleServe.footprint;
  const settled = idleServe.settled;
  const idleRssMiB = idle.vmRssMiB;
  const floor = await runtimeFloor(workDir, 2_000);

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
      got: `${idleRssMiB.toFixed(1)} MiB 2 s after listening, embedded default (${describe(idle)}; start-up peak VmHWM ${mib(idle.vmHwmMiB)}; ${QUIET_SECONDS_BEFORE_RELEASE + 3} s after listening, once start-up's memory is handed back, ${mib(settled.vmRssMiB)} MiB, RssAnon ${mib(settled.rssAnonMiB)}); a bare compiled Bun binary peaks at ${bareBunRssMiB.toFixed(1)} MiB, and Bun.serve with bun:sqlite and one Worker idles at ${mib(floor.vmRssMiB)} MiB (${describe(floor)})`,
    },
  ];
  for (const check of checks) console.log(`    ${check.ok ? "ok  " : "MISS"} ${check.what}: ${check.got}`);
  return {
    versionMs,
    offlineCliMs,
    serveListeningMs,
    idleRssMiB,
    idle,
    settled,
    bareBunMs,
    bareBunRssMiB,
    runtimeFloor: floor,
    checks,
  };
}

/** `bun scripts/bench-startup.ts`: this section alone, on dist/regauth (built by `bun run build`). */
if (import.meta.main) {
  const root = join(import.meta.dir, "..");
  const result = await measureStartup(join(root, "dist/regauth"), join(root, ".tmp/bench"));
  process.exit(result.checks.every((c) => c.ok) ? 0 : 1);
}
