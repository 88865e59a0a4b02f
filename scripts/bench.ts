/**
 * `bun run bench`: the compiled binary under wrk on loopback (issue 2, item 9). Three cases:
 * anonymous pull tokens; one user repeating (bcrypt cost 10, so the verified-credential cache is
 * what is measured); 1,000 distinct users rotating (cost 10 each, so mostly bcrypt at first).
 * Reports tokens/s, p99 latency and the server's peak RSS per case, writes docs/benchmarks.md,
 * and exits 1 when a target is missed.
 *
 * Options (flags or environment): --duration SECONDS (BENCH_DURATION, 10), --threads N
 * (BENCH_THREADS, 2), --connections N (BENCH_CONNECTIONS, 64), --users N (BENCH_USERS, 1000),
 * --note TEXT (BENCH_NOTE: a sentence for the doc, e.g. about the machine's load),
 * --out FILE (BENCH_OUT, docs/benchmarks.md; "-" writes nothing).
 */
import { cpus, totalmem } from "node:os";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { freePort } from "../test/e2e/free-port.ts";
import { dirname, join, resolve } from "node:path";
import pkg from "../package.json" with { type: "json" };

const REPO_ROOT = resolve(import.meta.dir, "..");
const BINARY = join(REPO_ROOT, "dist/regauth");
const WORK_DIR = join(REPO_ROOT, ".tmp/bench");
const BCRYPT_COST = 10;

const TARGETS = {
  anonymousTokensPerSecond: 10_000,
  repeatingUserTokensPerSecond: 3_000,
  peakRssMiB: 100,
};

interface Options {
  durationSeconds: number;
  threads: number;
  connections: number;
  users: number;
  note: string;
  out: string;
}

function parseOptions(argv: string[]): Options {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const match = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!match) throw new Error(`unexpected argument ${arg}`);
    const value = match[2] ?? argv[++i];
    if (value === undefined) throw new Error(`--${match[1]} needs a value`);
    flags.set(match[1] as string, value);
  }
  const known = ["duration", "threads", "connections", "users", "note", "out"];
  for (const name of flags.keys()) if (!known.includes(name)) throw new Error(`unknown option --${name}`);
  const integer = (name: string, env: string, fallback: number) => {
    const text = flags.get(name) ?? process.env[env] ?? String(fallback);
    const value = Number(text.replace(/s$/, ""));
    if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer`);
    return value;
  };
  return {
    durationSeconds: integer("duration", "BENCH_DURATION", 10),
    threads: integer("threads", "BENCH_THREADS", 2),
    connections: integer("connections", "BENCH_CONNECTIONS", 64),
    users: integer("users", "BENCH_USERS", 1000),
    note: flags.get("note") ?? process.env.BENCH_NOTE ?? "",
    out: flags.get("out") ?? process.env.BENCH_OUT ?? "docs/benchmarks.md",
  };
}

function ensureBuilt(): void {
  const newestSource = Math.max(
    ...[...new Bun.Glob("src/**/*.ts").scanSync(REPO_ROOT)].map((f) => statSync(join(REPO_ROOT, f)).mtimeMs),
  );
  if (existsSync(BINARY) && statSync(BINARY).mtimeMs >= newestSource) return;
  console.log("==> bun run build");
  const build = Bun.spawnSync(["bun", "run", "build"], {
    cwd: REPO_ROOT,
    stdout: "inherit",
    stderr: "inherit",
  });
  if (build.exitCode !== 0) throw new Error("bun run build failed");
}

interface BenchUser {
  name: string;
  password: string;
  hash: string;
}

/**
 * The rotating users, each with its own cost-10 bcrypt hash. Hashing 1,000 of them takes a minute
 * on two cores, so they are cached in .tmp/bench/users.json and reused by later runs.
 */
async function benchUsers(count: number): Promise<BenchUser[]> {
  const cachePath = join(WORK_DIR, "users.json");
  let cached: BenchUser[] = [];
  if (existsSync(cachePath)) cached = JSON.parse(readFileSync(cachePath, "utf8")) as BenchUser[];
  if (cached.length >= count && cached.every((u) => u.hash.startsWith(`$2b$${BCRYPT_COST}$`)))
    return cached.slice(0, count);
  console.log(`==> hashing ${count} passwords with bcrypt cost ${BCRYPT_COST} (cached for later runs)`);
  const started = performance.now();
  const users = await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const name = `user${String(i).padStart(4, "0")}`;
      const password = `${name}-${crypto.randomUUID()}`;
      const hash = await Bun.password.hash(password, { algorithm: "bcrypt", cost: BCRYPT_COST });
      return { name, password, hash };
    }),
  );
  console.log(`    ${((performance.now() - started) / 1000).toFixed(1)} s`);
  writeFileSync(cachePath, JSON.stringify(users), { mode: 0o600 });
  return users;
}

function configYaml(port: number, repeating: BenchUser, rotating: BenchUser[]): string {
  const users = [repeating, ...rotating].map((u) => `  ${u.name}:\n    password: "${u.hash}"`).join("\n");
  return `server:
  addr: 127.0.0.1:${port}
token:
  issuer: bench-issuer
  expiration: 300
users:
  "": {}
${users}
acl:
  - match: {account: ""}
    actions: [pull]
  - match: {account: "/.+/", name: "\${account}/*"}
    actions: ["*"]
  - match: {account: "/.+/"}
    actions: [pull]
`;
}

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

/** wrk calls done() once with everything we need; printing JSON avoids parsing its text report. */
const DONE_LUA = `
done = function(summary, latency, requests)
  io.write(string.format(
    "BENCH_RESULT {\\"requests\\":%d,\\"duration_us\\":%d,\\"non2xx\\":%d,\\"connect_errors\\":%d,\\"read_errors\\":%d,\\"write_errors\\":%d,\\"timeouts\\":%d,\\"p50_us\\":%d,\\"p99_us\\":%d,\\"max_us\\":%d}\\n",
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
`;

function luaScript(path: string, authorizations: string[]): string {
  if (authorizations.length === 0) return `wrk.path = ${JSON.stringify(path)}\n${DONE_LUA}`;
  const list = authorizations.map((a) => `  ${JSON.stringify(a)},`).join("\n");
  // Each wrk thread has its own Lua state; start them at different users so threads do not collide.
  return `local authorizations = {
${list}
}
local count = #authorizations
local next_index = 0
setup = function(thread)
  thread:set("offset", math.random(count))
end
request = function()
  next_index = next_index + 1
  local index = ((next_index + (offset or 0)) % count) + 1
  return wrk.format("GET", ${JSON.stringify(path)}, { ["Authorization"] = authorizations[index] })
end
${DONE_LUA}`;
}

interface WrkResult {
  requests: number;
  duration_us: number;
  non2xx: number;
  connect_errors: number;
  read_errors: number;
  write_errors: number;
  timeouts: number;
  p50_us: number;
  p99_us: number;
  max_us: number;
}

interface CaseResult {
  name: string;
  wrk: WrkResult;
  tokensPerSecond: number;
  peakRssMiB: number;
}

/** Samples the server's resident set every 50 ms while `work` runs; returns the highest seen. */
async function withRssSampling<T>(pid: number, work: Promise<T>): Promise<{ result: T; peakRssMiB: number }> {
  let peakKiB = 0;
  let running = true;
  const sampler = (async () => {
    while (running) {
      peakKiB = Math.max(peakKiB, readStatusKiB(pid, "VmRSS"));
      await Bun.sleep(50);
    }
  })();
  const result = await work;
  running = false;
  await sampler;
  return { result, peakRssMiB: peakKiB / 1024 };
}

function readStatusKiB(pid: number, field: "VmRSS" | "VmHWM"): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

async function runWrk(options: Options, url: string, scriptPath: string): Promise<WrkResult> {
  const proc = Bun.spawn(
    [
      "wrk",
      `--threads=${options.threads}`,
      `--connections=${options.connections}`,
      `--duration=${options.durationSeconds}s`,
      "--timeout=5s",
      "--latency",
      `--script=${scriptPath}`,
      url,
    ],
    { stdout: "pipe", stderr: "pipe" },
  );
  const [stdout, stderr, exitCode] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  const line = stdout.split("\n").find((l) => l.startsWith("BENCH_RESULT "));
  if (exitCode !== 0 || !line) throw new Error(`wrk failed (exit ${exitCode}):\n${stdout}\n${stderr}`);
  return JSON.parse(line.slice("BENCH_RESULT ".length)) as WrkResult;
}

/** One request before the load, so a misconfigured case fails loudly instead of measuring 401s. */
async function expectToken(url: string, authorization: string | undefined, expectedActions: string[]) {
  const res = await fetch(url, { headers: authorization ? { authorization } : {} });
  const body = (await res.json()) as { token?: string };
  if (res.status !== 200 || !body.token) throw new Error(`sanity request to ${url} got ${res.status}`);
  const claims = JSON.parse(Buffer.from(body.token.split(".")[1] as string, "base64url").toString()) as {
    access: { actions: string[] }[];
  };
  const actions = claims.access[0]?.actions ?? [];
  if (actions.join(",") !== expectedActions.join(","))
    throw new Error(`sanity request to ${url} granted [${actions}], expected [${expectedActions}]`);
}

function machineDescription(): string {
  const model = cpus()[0]?.model ?? "unknown CPU";
  const kernel = Bun.spawnSync(["uname", "-sr"]).stdout.toString().trim();
  return `${cpus().length} × ${model}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ${kernel}`;
}

function formatTable(results: CaseResult[]): string {
  const rows = results.map(
    (r) =>
      `| ${r.name} | ${Math.round(r.tokensPerSecond).toLocaleString("en-US")} | ${(r.wrk.p50_us / 1000).toFixed(2)} | ${(r.wrk.p99_us / 1000).toFixed(2)} | ${r.wrk.non2xx + r.wrk.timeouts + r.wrk.read_errors + r.wrk.connect_errors + r.wrk.write_errors} | ${r.peakRssMiB.toFixed(1)} |`,
  );
  return [
    "| case | tokens/s | p50 ms | p99 ms | errors | peak RSS MiB |",
    "|---|---:|---:|---:|---:|---:|",
    ...rows,
  ].join("\n");
}

/** What a self-contained case (own server, own wrk runs) adds to the report. */
interface SelfContainedCaseResult {
  rows: CaseResult[];
  checks: { what: string; ok: boolean; got: string }[];
  notes: string[];
}

/** Lua for wrk: base64 for Basic credentials built per request. */
const BASE64_LUA = `
local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function base64(data)
  return ((data:gsub(".", function(x)
    local r, b = "", x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return alphabet:sub(c + 1, c + 1)
  end) .. ({ "", "==", "=" })[#data % 3 + 1])
end
`;

/**
 * Issue 9 item 6: a flood of distinct failing (address, account) pairs next to a legitimate
 * user. The flood sends a new random address (X-Real-IP) and name on every request, with an
 * empty password: a failed login the throttle charges (two bucket entries) without a hash
 * check, so what is measured is the throttle's maps, not bcrypt. The legitimate user repeats
 * one credential from its own address. Its rate under the flood is printed as a ratio to its
 * rate alone, with the server's peak RSS. Failures wait out the failure-latency floor, so the
 * flood's rate is bounded by its connections: BENCH_FLOOD_CONNECTIONS (256) and
 * BENCH_FLOOD_SECONDS (3 × --duration) set how many distinct pairs it reaches (the issue's
 * figure is 500,000).
 */
async function floodOfDistinctPairsCase(options: Options, user: BenchUser): Promise<SelfContainedCaseResult> {
  const floodConnections = Number(process.env.BENCH_FLOOD_CONNECTIONS ?? 256);
  const floodSeconds = Number(process.env.BENCH_FLOOD_SECONDS ?? options.durationSeconds * 3);
  const legitConnections = 16;
  const port = await freePort();
  const dir = join(WORK_DIR, "flood");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const configPath = join(dir, "config.yml");
  writeFileSync(
    configPath,
    `server:\n  addr: 127.0.0.1:${port}\n  real_ip_header: X-Real-IP\ntoken:\n  issuer: bench-issuer\n  expiration: 300\nusers:\n  ${user.name}:\n    password: "${user.hash}"\nacl:\n  - match: {account: "/.+/"}\n    actions: [pull]\n`,
    { mode: 0o600 },
  );
  const server = Bun.spawn([BINARY, "serve", "--config", configPath, "--data-dir", join(dir, "data")], {
    stdout: "ignore",
    stderr: "ignore",
    stdin: "ignore",
  });
  const base = `http://127.0.0.1:${port}`;
  const path = "/auth?service=registry&scope=repository:library/alpine:pull";
  const legitLua = join(dir, "legit.lua");
  writeFileSync(
    legitLua,
    `request = function()\n  return wrk.format("GET", ${JSON.stringify(path)}, { ["Authorization"] = ${JSON.stringify(basic(user.name, user.password))}, ["X-Real-IP"] = "192.0.2.1" })\nend\n${DONE_LUA}`,
  );
  const floodLua = join(dir, "flood.lua");
  writeFileSync(
    floodLua,
    `${BASE64_LUA}
local counter = 0
setup = function(thread) thread:set("seed", math.random(1, 1000000000)) end
init = function() math.randomseed(seed or os.time()) end
request = function()
  counter = counter + 1
  local ip = string.format("10.%d.%d.%d", math.random(0, 255), math.random(0, 255), math.random(0, 255))
  local name = string.format("flood%d-%d", math.random(1, 1000000000), counter)
  return wrk.format("GET", ${JSON.stringify(path)}, { ["Authorization"] = "Basic " .. base64(name .. ":"), ["X-Real-IP"] = ip })
end
${DONE_LUA}`,
  );
  const wrk = (script: string, connections: number, seconds: number) =>
    runWrk({ ...options, threads: 1, connections, durationSeconds: seconds }, base, script);
  try {
    const deadline = Date.now() + 10_000;
    while (
      !(await fetch(`${base}/healthz`).then(
        (r) => r.ok,
        () => false,
      ))
    ) {
      if (Date.now() > deadline || server.exitCode !== null)
        throw new Error("flood case: regauth did not start");
      await Bun.sleep(50);
    }
    const sanity = await fetch(`${base}${path}`, {
      headers: { authorization: basic(user.name, user.password), "x-real-ip": "192.0.2.1" },
    });
    if (sanity.status !== 200) throw new Error(`flood case: sanity request got ${sanity.status}`);
    console.log(
      `==> legitimate user alone: wrk 1 thread, ${legitConnections} connections, ${options.durationSeconds} s`,
    );
    const alone = await wrk(legitLua, legitConnections, options.durationSeconds);
    console.log(
      `==> flood of distinct failing pairs (${floodConnections} connections, ${floodSeconds} s), the legitimate user in its last ${options.durationSeconds} s`,
    );
    const { result, peakRssMiB } = await withRssSampling(
      server.pid,
      (async () => {
        const flood = wrk(floodLua, floodConnections, floodSeconds);
        await Bun.sleep(Math.max(0, floodSeconds - options.durationSeconds - 1) * 1000);
        const legit = await wrk(legitLua, legitConnections, options.durationSeconds);
        return { flood: await flood, legit };
      })(),
    );
    const rate = (w: WrkResult) => (w.requests - w.non2xx) / (w.duration_us / 1e6);
    const ratio = rate(result.legit) / rate(alone);
    const pairs = result.flood.requests;
    console.log(
      `    legitimate user ${Math.round(rate(result.legit))} tokens/s under the flood vs ${Math.round(rate(alone))} alone: ratio ${ratio.toFixed(2)}; ${pairs.toLocaleString("en-US")} distinct pairs sent; peak RSS ${peakRssMiB.toFixed(1)} MiB`,
    );
    return {
      rows: [
        {
          name: "legitimate user alone (flood case baseline)",
          wrk: alone,
          tokensPerSecond: rate(alone),
          peakRssMiB: 0,
        },
        {
          name: `legitimate user under a flood of ${pairs.toLocaleString("en-US")} distinct failing pairs`,
          wrk: result.legit,
          tokensPerSecond: rate(result.legit),
          peakRssMiB,
        },
      ],
      checks: [
        {
          what: "under a flood of distinct failing pairs, the legitimate user keeps ≥ 80% of its rate alone",
          ok: ratio >= 0.8 && result.legit.non2xx === 0,
          got: `ratio ${ratio.toFixed(2)}, ${result.legit.non2xx} non-2xx, ${pairs.toLocaleString("en-US")} pairs`,
        },
        {
          what: "peak RSS under the flood < 120 MiB",
          ok: peakRssMiB < 120,
          got: `${peakRssMiB.toFixed(1)} MiB`,
        },
      ],
      notes: [
        `Flood of distinct failing pairs: ${pairs.toLocaleString("en-US")} requests, each a new (address, account) pair with an empty password, ${floodConnections} connections for ${floodSeconds} s; the legitimate user (${legitConnections} connections, its own address, a cached credential) measured in the flood's last ${options.durationSeconds} s: ratio ${ratio.toFixed(2)} to its rate alone.`,
      ],
    };
  } finally {
    server.kill("SIGTERM");
    await server.exited;
  }
}

/**
 * Issue 9 item 6, in process: the login throttle itself under 500,000 distinct failing pairs
 * (the HTTP case above cannot send that many in a short run: every failure waits out the
 * failure-latency floor). A legitimate credential's admissions per second with the maps full
 * and churning, as a ratio to the same with empty maps, and the process's RSS growth.
 */
async function throttleMapsCase(): Promise<SelfContainedCaseResult> {
  const { LoginThrottle } = await import("../src/authn/throttle.ts");
  const pairs = Number(process.env.BENCH_THROTTLE_PAIRS ?? 500_000);
  const throttle = new LoginThrottle();
  const legitIp = { text: "192.0.2.1", bytes: new Uint8Array([192, 0, 2, 1]) };
  const admitLegit = () => {
    const admission = throttle.admit(legitIp, "alice", "alice-password");
    if (admission.kind !== "admitted") throw new Error("throttle case: the legitimate user was refused");
    admission.attempt.succeeded();
  };
  const legitRate = (count: number) => {
    const startedMs = performance.now();
    for (let i = 0; i < count; i++) admitLegit();
    return count / ((performance.now() - startedMs) / 1000);
  };
  admitLegit();
  legitRate(20_000); // warm-up
  const alone = legitRate(100_000);
  Bun.gc(true);
  const rssBeforeMiB = process.memoryUsage().rss / 2 ** 20;
  const heapBeforeBytes = process.memoryUsage().heapUsed;
  let peakRssMiB = rssBeforeMiB;
  const name = "x".repeat(200); // long names: keyed by a short hash, they cost what short ones do
  const floodStartedMs = performance.now();
  let legitOps = 0;
  let legitMs = 0;
  for (let i = 0; i < pairs; i++) {
    const ip = { text: "", bytes: new Uint8Array([10, (i >> 16) & 255, (i >> 8) & 255, i & 255]) };
    ip.text = ip.bytes.join(".");
    const admission = throttle.admit(ip, `${name}${i}`, "guess");
    if (admission.kind === "admitted") admission.attempt.failed();
    if (i % 10 === 0) {
      const startedMs = performance.now();
      admitLegit();
      legitMs += performance.now() - startedMs;
      legitOps++;
    }
    if (i % 50_000 === 0) peakRssMiB = Math.max(peakRssMiB, process.memoryUsage().rss / 2 ** 20);
  }
  const floodSeconds = (performance.now() - floodStartedMs) / 1000;
  peakRssMiB = Math.max(peakRssMiB, process.memoryUsage().rss / 2 ** 20);
  const duringFlood = legitOps / (legitMs / 1000);
  const after = legitRate(100_000);
  const ratio = Math.min(duringFlood, after) / alone;
  const grownMiB = peakRssMiB - rssBeforeMiB;
  // What the throttle keeps is the live heap after a full GC; the peak RSS here also holds the
  // driver's own garbage (a 200-character name per pair) and pages the allocator has not returned.
  Bun.gc(true);
  const liveMiB = (process.memoryUsage().heapUsed - heapBeforeBytes) / 2 ** 20;
  const microsPerPair = (floodSeconds * 1e6) / pairs;
  console.log(
    `==> throttle maps, in process: ${pairs.toLocaleString("en-US")} distinct failing pairs in ${floodSeconds.toFixed(1)} s (${microsPerPair.toFixed(1)} µs each); legitimate admissions ${Math.round(alone)}/s alone, ${Math.round(duringFlood)}/s during, ${Math.round(after)}/s after: ratio ${ratio.toFixed(2)}; live heap +${liveMiB.toFixed(1)} MiB, process RSS +${grownMiB.toFixed(1)} MiB at peak; ${throttle.trackedPairs.toLocaleString("en-US")} pairs kept`,
  );
  return {
    rows: [],
    checks: [
      {
        what: `throttle with ${pairs.toLocaleString("en-US")} distinct failing pairs: a legitimate credential keeps ≥ 80% of its admission rate`,
        ok: ratio >= 0.8,
        got: `ratio ${ratio.toFixed(2)} (${Math.round(alone)}/s alone)`,
      },
      {
        // The server idles at ~75 MiB; issue 9 item 6 asks for a peak under 120 MiB.
        what: "the throttle's maps under that flood hold < 45 MiB (live heap after a full GC)",
        ok: liveMiB < 45,
        got: `+${liveMiB.toFixed(1)} MiB live; process RSS +${grownMiB.toFixed(1)} MiB at peak`,
      },
    ],
    notes: [
      `Throttle maps in process: ${pairs.toLocaleString("en-US")} distinct failing pairs (200-character names) took ${floodSeconds.toFixed(1)} s (${microsPerPair.toFixed(1)} µs each); a legitimate credential's admissions: ratio ${ratio.toFixed(2)} to its rate with empty maps; live heap +${liveMiB.toFixed(1)} MiB (process RSS +${grownMiB.toFixed(1)} MiB at peak, the driver's garbage included).`,
    ],
  };
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  for (const tool of ["wrk"])
    if (!Bun.which(tool))
      throw new Error(`${tool} not found; apt-get install wrk (scripts/lib/ensure-tools.sh)`);
  mkdirSync(WORK_DIR, { recursive: true });
  ensureBuilt();

  const rotating = await benchUsers(options.users);
  const repeating: BenchUser = {
    name: "bench",
    password: "bench-password",
    hash: await Bun.password.hash("bench-password", { algorithm: "bcrypt", cost: BCRYPT_COST }),
  };
  const port = await freePort();
  const configPath = join(WORK_DIR, "config.yml");
  writeFileSync(configPath, configYaml(port, repeating, rotating), { mode: 0o600 });
  const dataDir = join(WORK_DIR, "data");
  rmSync(dataDir, { recursive: true, force: true });

  const server = Bun.spawn([BINARY, "serve", "--config", configPath, "--data-dir", dataDir], {
    stdout: "ignore",
    stderr: "pipe",
    stdin: "ignore",
  });
  const base = `http://127.0.0.1:${port}`;
  try {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const ok = await fetch(`${base}/healthz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (Date.now() > deadline || server.exitCode !== null)
        throw new Error(`regauth did not start:\n${await new Response(server.stderr).text()}`);
      await Bun.sleep(50);
    }
    const idleRssMiB = readStatusKiB(server.pid, "VmRSS") / 1024;

    const cases: { name: string; path: string; authorizations: string[]; actions: string[] }[] = [
      {
        name: "anonymous pull",
        path: "/auth?service=registry&scope=repository:library/alpine:pull",
        authorizations: [],
        actions: ["pull"],
      },
      {
        name: `one user repeating (bcrypt cost ${BCRYPT_COST})`,
        path: "/auth?service=registry&scope=repository:bench/app:pull,push",
        authorizations: [basic(repeating.name, repeating.password)],
        actions: ["pull", "push"],
      },
      {
        name: `${rotating.length.toLocaleString("en-US")} distinct users rotating (bcrypt cost ${BCRYPT_COST})`,
        path: "/auth?service=registry&scope=repository:library/alpine:pull",
        authorizations: rotating.map((u) => basic(u.name, u.password)),
        actions: ["pull"],
      },
    ];

    const results: CaseResult[] = [];
    for (const benchCase of cases) {
      await expectToken(`${base}${benchCase.path}`, benchCase.authorizations[0], benchCase.actions);
      const scriptPath = join(WORK_DIR, `case-${results.length + 1}.lua`);
      writeFileSync(scriptPath, luaScript(benchCase.path, benchCase.authorizations), { mode: 0o600 });
      console.log(
        `==> ${benchCase.name}: wrk ${options.threads} threads, ${options.connections} connections, ${options.durationSeconds} s`,
      );
      const { result: wrk, peakRssMiB } = await withRssSampling(
        server.pid,
        runWrk(options, base, scriptPath),
      );
      const tokensPerSecond = (wrk.requests - wrk.non2xx) / (wrk.duration_us / 1e6);
      results.push({ name: benchCase.name, wrk, tokensPerSecond, peakRssMiB });
      console.log(
        `    ${Math.round(tokensPerSecond)} tokens/s, p99 ${(wrk.p99_us / 1000).toFixed(2)} ms, peak RSS ${peakRssMiB.toFixed(1)} MiB, non-2xx ${wrk.non2xx}, timeouts ${wrk.timeouts}`,
      );
    }
    const highWaterMiB = readStatusKiB(server.pid, "VmHWM") / 1024;

    // Self-contained cases: each runs its own server and wrk, and reports rows, checks and notes.
    const selfContained: SelfContainedCaseResult[] = [];
    for (const run of [() => floodOfDistinctPairsCase(options, repeating), throttleMapsCase])
      selfContained.push(await run());

    const [anonymous, repeatingCase] = results as [CaseResult, CaseResult, CaseResult];
    const peakRssMiB = Math.max(highWaterMiB, ...results.map((r) => r.peakRssMiB));
    const checks = [
      {
        what: `anonymous ≥ ${TARGETS.anonymousTokensPerSecond.toLocaleString("en-US")} tokens/s`,
        ok: anonymous.tokensPerSecond >= TARGETS.anonymousTokensPerSecond && anonymous.wrk.non2xx === 0,
        got: `${Math.round(anonymous.tokensPerSecond)} tokens/s, ${anonymous.wrk.non2xx} non-2xx`,
      },
      {
        what: `repeating authenticated ≥ ${TARGETS.repeatingUserTokensPerSecond.toLocaleString("en-US")} tokens/s`,
        ok:
          repeatingCase.tokensPerSecond >= TARGETS.repeatingUserTokensPerSecond &&
          repeatingCase.wrk.non2xx === 0,
        got: `${Math.round(repeatingCase.tokensPerSecond)} tokens/s, ${repeatingCase.wrk.non2xx} non-2xx`,
      },
      {
        what: `peak RSS ≤ ${TARGETS.peakRssMiB} MiB`,
        ok: peakRssMiB <= TARGETS.peakRssMiB,
        got: `${peakRssMiB.toFixed(1)} MiB, the higher of VmHWM and the sampled VmRSS`,
      },
    ];

    checks.push(...selfContained.flatMap((c) => c.checks));
    const table = formatTable([...results, ...selfContained.flatMap((c) => c.rows)]);
    console.log(`\n${table}\n\nidle RSS ${idleRssMiB.toFixed(1)} MiB, VmHWM ${highWaterMiB.toFixed(1)} MiB`);
    for (const check of checks) console.log(`${check.ok ? "ok  " : "MISS"} ${check.what}: ${check.got}`);

    if (options.out !== "-") {
      const command = `bun run bench --duration ${options.durationSeconds} --threads ${options.threads} --connections ${options.connections} --users ${options.users}`;
      const doc = `# Benchmarks

Generated by \`bun run bench\` (scripts/bench.ts); rerun it to refresh this file.

- Date: ${new Date().toISOString().replace(/\.\d+Z$/, "Z")}
- Machine: ${machineDescription()}
- regauth ${pkg.version} (compiled with \`bun build --compile\`, Bun ${Bun.version}), wrk on the same machine, loopback
- Command: \`${command}\`
- Load: ${options.threads} wrk threads, ${options.connections} keep-alive connections, ${options.durationSeconds} s per case; every response checked (errors = non-2xx + socket errors + timeouts)
${options.note ? `- Note: ${options.note}\n` : ""}
${table}

Server RSS idle after start: ${idleRssMiB.toFixed(1)} MiB; high-water mark (VmHWM) over the whole run: ${highWaterMiB.toFixed(1)} MiB.
"Peak RSS" per case is the highest VmRSS sampled every 50 ms from /proc while wrk ran.
${selfContained.flatMap((c) => c.notes).join("\n")}

## Targets (issue 2, on a 2-core machine, load generator included)

${checks.map((c) => `- ${c.ok ? "met" : "**missed**"}: ${c.what} (measured ${c.got})`).join("\n")}

## What the cases measure

- **anonymous pull**: \`GET /auth?service=registry&scope=repository:library/alpine:pull\` with no
  credentials; ACL evaluation and an ES256 signature per token.
- **one user repeating**: the same Basic credentials on every request, a bcrypt cost ${BCRYPT_COST}
  hash in the config. After the first request, the verified-credential cache (HMAC of user,
  password and stored hash under a per-process key) answers, so this measures the cache, not bcrypt.
- **distinct users rotating**: ${rotating.length.toLocaleString("en-US")} users, each with its own cost ${BCRYPT_COST}
  hash, cycled by a wrk Lua script. Each user's first request runs bcrypt (~50–100 ms of CPU at
  cost ${BCRYPT_COST}); until every user is in the cache, throughput is bounded by bcrypt on the
  cores that wrk leaves free. This case has no target; it shows what a cold start under many
  users costs. Hashes are generated once and cached in \`.tmp/bench/users.json\`.
`;
      const outPath = resolve(REPO_ROOT, options.out);
      mkdirSync(dirname(outPath), { recursive: true });
      writeFileSync(outPath, doc);
      console.log(`\nwrote ${options.out}`);
    }
    const missed = checks.filter((c) => !c.ok);
    if (missed.length > 0) {
      console.error(`\ntargets missed: ${missed.map((c) => `${c.what} (got ${c.got})`).join("; ")}`);
      return 1;
    }
    return 0;
  } finally {
    server.kill("SIGTERM");
    await server.exited;
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`bench: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(2);
  },
);
