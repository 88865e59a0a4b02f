/**
 * `bun run bench --only workers` (issue 17 item 4): anonymous pull tokens and one user repeating,
 * with server.workers 1 and N (the CPUs here), each run REPEATS times; prints the medians, their
 * ratio, p99 and the peak memory of the whole process tree (the supervisor and its workers):
 * VmRSS summed, which counts the executable's shared pages once per process, and the workers'
 * private memory (Private_Clean + Private_Dirty: what a worker frees when it exits, so what each
 * extra worker costs; Pss would move with the other server's share of the same binary). Both servers run throughout and the runs
 * alternate, so the shared machine's changing load weighs on both alike. Run by scripts/bench.ts.
 */
import { drainOutput } from "./lib/drain-output.ts";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "../test/e2e/free-port.ts";

const REPEATS = 3;
/** Issue 17: each extra worker may add this much, at peak. */
const MIB_PER_EXTRA_WORKER = 45;

export interface WorkersBenchDeps {
  binary: string;
  workDir: string;
  durationSeconds: number;
  /** Runs wrk with the script and returns tokens/s, p99 and errors. */
  runWrk(
    url: string,
    scriptPath: string,
  ): Promise<{ tokensPerSecond: number; p50Ms: number; p99Ms: number; errors: number }>;
  /** A wrk script for GET `path`, with this Authorization header (none: anonymous). */
  luaScript(path: string, authorizations: string[]): string;
  basic(user: string, password: string): string;
}

export interface WorkersCaseRow {
  name: string;
  workers: number;
  tokensPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  peakTreeRssMiB: number;
  /** The workers' (not the supervisor's) private memory, summed. */
  peakWorkersPrivateMiB: number;
}

export interface WorkersBenchResult {
  rows: WorkersCaseRow[];
  checks: { what: string; ok: boolean; got: string }[];
  notes: string[];
}

const PATH = "/auth?service=registry&scope=repository:library/alpine:pull";

export async function workersBench(deps: WorkersBenchDeps): Promise<WorkersBenchResult> {
  const cpus = navigator.hardwareConcurrency;
  const counts = [1, Math.max(2, cpus)];
  const password = "bench-password";
  const hash = await Bun.password.hash(password, { algorithm: "bcrypt", cost: 10 });
  const rows: WorkersCaseRow[] = [];
  const cases = [
    { name: "anonymous pull", authorizations: [] as string[] },
    { name: "one user repeating (bcrypt cost 10)", authorizations: [deps.basic("bench", password)] },
  ];
  // Both servers run throughout and the runs alternate (1, N, 1, N, ...), so a change in the
  // machine's load during the bench (it is shared) weighs on both sides alike.
  const servers: { workers: number; base: string; pid: number; stop(): Promise<void> }[] = [];
  try {
    for (const workers of counts) servers.push(await startServer(deps, workers, hash));
    for (const benchCase of cases) {
      const script = join(deps.workDir, `workers-${rows.length}.lua`);
      writeFileSync(script, deps.luaScript(PATH, benchCase.authorizations), { mode: 0o600 });
      const runs = new Map<number, WorkersCaseRow[]>(counts.map((n) => [n, []]));
      for (let i = 0; i < REPEATS; i++) {
        for (const server of servers) {
          const sampler = sampleTree(server.pid);
          const result = await deps.runWrk(`${server.base}${PATH}`, script);
          const peak = await sampler.stop();
          runs
            .get(server.workers)
            ?.push({ name: benchCase.name, workers: server.workers, ...result, ...peak });
          console.log(
            `    ${benchCase.name}, ${server.workers} worker(s), run ${i + 1}: ${Math.round(result.tokensPerSecond)} tokens/s, p99 ${result.p99Ms.toFixed(2)} ms, tree RSS ${peak.peakTreeRssMiB.toFixed(1)} MiB (workers' private ${peak.peakWorkersPrivateMiB.toFixed(1)}), errors ${result.errors}`,
          );
        }
      }
      for (const n of counts) rows.push(medianRow(runs.get(n) ?? []));
    }
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
  }
  const checks: WorkersBenchResult["checks"] = [];
  const notes: string[] = [];
  for (const benchCase of cases) {
    const one = rows.find((r) => r.name === benchCase.name && r.workers === 1);
    const many = rows.find((r) => r.name === benchCase.name && r.workers > 1);
    if (!one || !many) continue;
    const ratio = many.tokensPerSecond / one.tokensPerSecond;
    const line = `${benchCase.name}: ${many.workers} workers ${Math.round(many.tokensPerSecond)} tokens/s vs 1 worker ${Math.round(one.tokensPerSecond)} = ${ratio.toFixed(2)}×; p99 ${many.p99Ms.toFixed(2)} vs ${one.p99Ms.toFixed(2)} ms`;
    notes.push(line);
    checks.push({
      what: `${benchCase.name}: ${many.workers} workers faster than 1, no errors`,
      ok: ratio > 1 && many.errors === 0,
      got: `${ratio.toFixed(2)}×, ${many.errors} errors`,
    });
    const perWorker = many.peakWorkersPrivateMiB / (many.workers - 1);
    checks.push({
      what: `${benchCase.name}: ≤ ${MIB_PER_EXTRA_WORKER} MiB per extra worker (peak private memory)`,
      ok: perWorker <= MIB_PER_EXTRA_WORKER,
      got: `${perWorker.toFixed(1)} MiB per extra worker (tree VmRSS summed ${many.peakTreeRssMiB.toFixed(1)} vs ${one.peakTreeRssMiB.toFixed(1)} MiB)`,
    });
  }
  notes.push(
    `Medians of ${REPEATS} runs of ${deps.durationSeconds} s; wrk runs on the same ${cpus} CPUs, so the machine is shared with the load generator (and with whatever else runs).`,
  );
  return { rows, checks, notes };
}

/** A server with `workers` processes on a port of its own; resolves once every worker serves. */
async function startServer(deps: WorkersBenchDeps, workers: number, hash: string) {
  const port = await freePort();
  const dir = join(deps.workDir, `workers-${workers}`);
  rmSync(dir, { recursive: true, force: true });
  const configPath = join(deps.workDir, `workers-${workers}.yml`);
  writeFileSync(
    configPath,
    `server: {addr: "127.0.0.1:${port}", workers: ${workers}}
token: {issuer: bench-issuer, expiration: 300}
users:
  "": {}
  bench: {password: "${hash}"}
acl:
  - match: {account: ""}
    actions: [pull]
  - match: {account: "/.+/"}
    actions: [pull]
`,
    { mode: 0o600 },
  );
  const server = Bun.spawn([deps.binary, "serve", "--config", configPath, "--data-dir", join(dir, "data")], {
    stdout: "ignore",
    stderr: "pipe",
    stdin: "ignore",
  });
  const stderr = drainOutput(server.stderr);
  const base = `http://127.0.0.1:${port}`;
  const stop = async () => {
    server.kill("SIGTERM");
    await server.exited;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const serving = () => (stderr.text.match(/msg="worker serving"/g) ?? []).length >= workers - 1;
    await waitUntil(serving, server, stderr);
    await waitUntil(
      () =>
        fetch(`${base}/healthz`).then(
          (r) => r.ok,
          () => false,
        ),
      server,
      stderr,
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return { workers, base, pid: server.pid, stop };
}

function medianRow(runs: WorkersCaseRow[]): WorkersCaseRow {
  const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
  const first = runs[0] as WorkersCaseRow;
  return {
    name: first.name,
    workers: first.workers,
    tokensPerSecond: median(runs.map((r) => r.tokensPerSecond)),
    p50Ms: median(runs.map((r) => r.p50Ms)),
    p99Ms: median(runs.map((r) => r.p99Ms)),
    errors: runs.reduce((sum, r) => sum + r.errors, 0),
    peakTreeRssMiB: Math.max(...runs.map((r) => r.peakTreeRssMiB)),
    peakWorkersPrivateMiB: Math.max(...runs.map((r) => r.peakWorkersPrivateMiB)),
  };
}

/** The supervisor and its children, sampled every 100 ms: summed VmRSS and Pss at their peaks. */
function sampleTree(pid: number): {
  stop(): Promise<{ peakTreeRssMiB: number; peakWorkersPrivateMiB: number }>;
} {
  let running = true;
  let rssKiB = 0;
  let privateKiB = 0;
  const loop = (async () => {
    while (running) {
      const workers = childrenOf(pid);
      rssKiB = Math.max(rssKiB, sum([pid, ...workers].map((p) => statusKiB(`/proc/${p}/status`, "VmRSS"))));
      const privateOf = (p: number) =>
        statusKiB(`/proc/${p}/smaps_rollup`, "Private_Clean") +
        statusKiB(`/proc/${p}/smaps_rollup`, "Private_Dirty");
      privateKiB = Math.max(privateKiB, sum(workers.map(privateOf)));
      await Bun.sleep(100);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { peakTreeRssMiB: rssKiB / 1024, peakWorkersPrivateMiB: privateKiB / 1024 };
    },
  };
}

function childrenOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((task) =>
      readFileSync(`/proc/${pid}/task/${task}/children`, "utf8")
        .trim()
        .split(/\s+/)
        .filter(Boolean)
        .map(Number),
    );
  } catch {
    return [];
  }
}

function statusKiB(file: string, field: string): number {
  try {
    return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(file, "utf8"))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

async function waitUntil(
  ready: () => boolean | Promise<boolean>,
  server: { exitCode: number | null },
  stderr: { text: string },
): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await ready())) {
    if (Date.now() > deadline || server.exitCode !== null)
      throw new Error(`regauth did not start:\n${stderr.text}`);
    await Bun.sleep(50);
  }
}
