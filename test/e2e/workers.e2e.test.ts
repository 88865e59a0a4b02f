/**
 * `server.workers` with the compiled binary (issue 17): two processes behind one port serve as one
 * server. Both answer; SIGHUP with a good and a broken config reaches both; a killed worker is
 * restarted and nothing fails after; wrong passwords spread over both hit the 429 one process
 * gives; a second `regauth serve` on the port still fails to start; SIGTERM stops them all.
 */
import { describe, expect, it } from "bun:test";
import { chmodSync, existsSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { hashPassword, makeTempDir } from "../helpers.ts";
import { BINARY, decodeToken, freePort, type Regauth, run, startRegauth } from "./harness.ts";

const ALICE = hashPassword("alice-pw");

function configYaml(workers: number, acl: string): string {
  return `
server:
  addr: 127.0.0.1:{{PORT}}
  workers: ${workers}
token:
  issuer: workers-e2e
users:
  alice:
    password: "${ALICE}"
acl:
${acl}`;
}
const PULL = "  - match: {account: alice}\n    actions: [pull]\n";
const PULL_PUSH = "  - match: {account: alice}\n    actions: [pull, push]\n";

const basic = (user: string, password: string) => `Basic ${btoa(`${user}:${password}`)}`;

/** A request on a connection of its own, so the kernel picks a process for each. */
function freshFetch(url: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { keepalive: false, headers: { connection: "close", ...headers } });
}

/** Which processes answered `count` /healthz requests, each on a new connection. */
async function workersSeen(server: Regauth, count: number): Promise<Set<number>> {
  const seen = new Set<number>();
  for (let i = 0; i < count; i++) {
    const response = await freshFetch(`${server.url}/healthz`);
    expect(response.status).toBe(200);
    seen.add(((await response.json()) as { worker: number }).worker);
  }
  return seen;
}

async function startTwo(acl = PULL): Promise<Regauth> {
  const server = await startRegauth({ configYaml: configYaml(2, acl) });
  await server.stderr.waitFor(/msg="worker serving" worker=1 pid=\d+/, 20_000);
  return server;
}

/** alice's actions on alice/app, from `count` token requests on new connections. */
async function aliceActions(server: Regauth, count: number): Promise<string[]> {
  const answers: string[] = [];
  for (let i = 0; i < count; i++) {
    const response = await freshFetch(
      `${server.url}/auth?service=registry&scope=repository:alice/app:pull,push`,
      {
        authorization: basic("alice", "alice-pw"),
      },
    );
    expect(response.status).toBe(200);
    const { token } = (await response.json()) as { token: string };
    const access = decodeToken(token).claims.access as { actions: string[] }[];
    answers.push(access.flatMap((a) => a.actions).join(","));
  }
  return answers;
}

const count = (text: string, pattern: RegExp) => text.match(new RegExp(pattern, "g"))?.length ?? 0;

describe("server.workers: 2", () => {
  it("serves from both processes behind one port, with one banner and one listening line", async () => {
    const server = await startTwo();
    try {
      expect([...(await workersSeen(server, 40))].sort()).toEqual([0, 1]);
      expect(count(server.stderr.text, /msg="regauth listening"/)).toBe(1);
      expect(server.stderr.text).toContain(" workers=2");
      // The first-run banner, once: stdout is the supervisor's only.
      expect(count(server.stdout.text, /created the administrator account/)).toBe(1);
    } finally {
      await server.stop();
    }
  }, 60_000);

  it("reloads both on SIGHUP before it logs the outcome once, and both keep the running config when the new one is broken", async () => {
    const server = await startTwo();
    const configPath = join(server.dir, "auth_config.yml");
    try {
      expect(new Set(await aliceActions(server, 20))).toEqual(new Set(["pull"]));
      writeFileSync(configPath, configYaml(2, PULL_PUSH).replaceAll("{{PORT}}", String(server.port)));
      server.proc.kill("SIGHUP");
      // One line for the server, logged once every process serves the outcome.
      await server.stderr.waitFor(/msg="config reloaded"/, 20_000);
      expect(new Set(await aliceActions(server, 30))).toEqual(new Set(["pull,push"]));

      writeFileSync(configPath, "server: {workers: 2}\nusers: {alice: {colour: blue}}\n");
      server.proc.kill("SIGHUP");
      await server.stderr.waitFor(/msg="config reload refused"[^\n]*users\.alice\.colour/, 20_000);
      expect(new Set(await aliceActions(server, 30))).toEqual(new Set(["pull,push"]));
      // Once each, and no worker disagreed.
      expect(count(server.stderr.text, /msg="config reloaded"/)).toBe(1);
      expect(count(server.stderr.text, /msg="config reload refused"/)).toBe(1);
      expect(server.stderr.text).not.toContain("a worker");
      expect([...(await workersSeen(server, 40))].sort()).toEqual([0, 1]);
    } finally {
      await server.stop();
    }
  }, 90_000);

  it("ignores a SIGHUP sent to a worker itself (pkill -HUP regauth): the supervisor's is the one", async () => {
    const server = await startTwo();
    try {
      const pid = Number((await server.stderr.waitFor(/msg="worker serving" worker=1 pid=(\d+)/))[1]);
      process.kill(pid, "SIGHUP");
      await Bun.sleep(500);
      expect(existsSync(`/proc/${pid}`)).toBe(true);
      expect(server.stderr.text).not.toContain("worker exited");
      expect([...(await workersSeen(server, 40))].sort()).toEqual([0, 1]);
    } finally {
      await server.stop();
    }
  }, 60_000);

  it("restarts a killed worker, and no request fails once it serves again", async () => {
    const server = await startTwo();
    try {
      const pid = Number((await server.stderr.waitFor(/msg="worker serving" worker=1 pid=(\d+)/))[1]);
      process.kill(pid, "SIGKILL");
      await server.stderr.waitFor(
        /msg="worker exited; restarting it" worker=1 pid=\d+ signal=SIGKILL/,
        20_000,
      );
      const again = await server.stderr.waitFor(
        new RegExp(`msg="worker serving" worker=1 pid=(?!${pid}\\b)(\\d+)`),
        20_000,
      );
      expect(Number(again[1])).not.toBe(pid);
      expect(new Set(await aliceActions(server, 30))).toEqual(new Set(["pull"]));
      expect([...(await workersSeen(server, 40))].sort()).toEqual([0, 1]);
    } finally {
      await server.stop();
    }
  }, 90_000);

  it("answers 20 wrong passwords for one account from one address as one process does", async () => {
    const statuses = async (server: Regauth) => {
      const got: number[] = [];
      for (let i = 0; i < 20; i++) {
        const response = await freshFetch(
          `${server.url}/auth?service=registry&scope=repository:alice/app:pull`,
          {
            authorization: basic("alice", `wrong-${i}`),
          },
        );
        got.push(response.status);
      }
      return got;
    };
    const one = await startRegauth({ configYaml: configYaml(1, PULL) });
    let single: number[];
    try {
      single = await statuses(one);
    } finally {
      await one.stop();
    }
    // The default budget: 10 failures per (address, account) in a burst, then 429.
    expect(single).toEqual([...Array(10).fill(401), ...Array(10).fill(429)]);
    const two = await startTwo();
    try {
      expect(await statuses(two)).toEqual(single);
      // alice's own password is refused too, as the budget of this address for alice is spent.
      const response = await freshFetch(`${two.url}/auth?service=registry&scope=repository:alice/app:pull`, {
        authorization: basic("alice", "alice-pw"),
      });
      expect(response.status).toBe(429);
    } finally {
      await two.stop();
    }
  }, 90_000);

  it("stops a second regauth serve on the same port, and stops its workers on SIGTERM", async () => {
    const server = await startTwo();
    const workerPid = Number((await server.stderr.waitFor(/msg="worker serving" worker=1 pid=(\d+)/))[1]);
    try {
      const dir = makeTempDir("second-");
      const result = await run(
        [BINARY, "serve", "--data-dir", join(dir, "data"), "--addr", `127.0.0.1:${server.port}`],
        {
          timeoutMs: 20_000,
        },
      );
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toContain(
        `cannot listen on 127.0.0.1:${server.port}: the address is already in use`,
      );
      expect(result.stdout).toBe("");
      expect(existsSync(join(dir, "data", "regauth.db"))).toBe(false);
      expect([...(await workersSeen(server, 40))].sort()).toEqual([0, 1]);
    } finally {
      await server.stop();
    }
    expect(existsSync(`/proc/${workerPid}`)).toBe(false);
  }, 60_000);

  it("stops cleanly when SIGTERM reaches every process at once (systemd's KillMode=control-group)", async () => {
    const server = await startTwo();
    const workerPid = Number((await server.stderr.waitFor(/msg="worker serving" worker=1 pid=(\d+)/))[1]);
    process.kill(workerPid, "SIGTERM");
    server.proc.kill("SIGTERM");
    expect(await server.proc.exited).toBe(0);
    expect(existsSync(`/proc/${workerPid}`)).toBe(false);
    expect(server.stderr.text).not.toContain("restarting");
    // Both closed the database: the last one out removes the write-ahead log.
    expect(existsSync(join(server.dataDir, "regauth.db-wal"))).toBe(false);
  }, 60_000);

  it("does not leave a worker serving the port when the supervisor is killed", async () => {
    const server = await startTwo();
    const workerPid = Number((await server.stderr.waitFor(/msg="worker serving" worker=1 pid=(\d+)/))[1]);
    server.proc.kill("SIGKILL");
    await server.proc.exited;
    const deadline = Date.now() + 10_000;
    while (existsSync(`/proc/${workerPid}`) && Date.now() < deadline) await Bun.sleep(50);
    expect(existsSync(`/proc/${workerPid}`)).toBe(false);
    // The port is free for the next start.
    const again = await fetch(`${server.url}/healthz`).then(
      () => "answered",
      () => "refused",
    );
    expect(again).toBe("refused");
  }, 60_000);

  it("stops a second regauth serve that starts while the first still holds the address's lock", async () => {
    const dir = makeTempDir("lock-");
    const port = 40_000 + Math.floor(Math.random() * 20_000);
    // What a regauth holds from before its probe of the port until it exits (src/serve/port-lock.ts).
    const lock = Bun.listen({ unix: `\0regauth-listen:127.0.0.1:${port}`, socket: { data() {} } });
    try {
      const result = await run(
        [BINARY, "serve", "--data-dir", join(dir, "data"), "--addr", `127.0.0.1:${port}`],
        {
          timeoutMs: 20_000,
        },
      );
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toContain(
        `cannot listen on 127.0.0.1:${port}: the address is already in use by another regauth`,
      );
      expect(existsSync(join(dir, "data"))).toBe(false);
    } finally {
      lock.stop(true);
    }
  }, 30_000);
});

describe("server.workers: the address's lock", () => {
  // Another user is needed: root runs the squatter as nobody (setpriv).
  const isRoot = process.getuid?.() === 0 && existsSync("/usr/bin/setpriv");

  it.skipIf(!isRoot)(
    "starts when another user squats the lock's abstract name (that user cannot share the port), and says so",
    async () => {
      const port = await freePort();
      const script = join(makeTempDir("squat-"), "squat.ts");
      writeFileSync(
        script,
        `Bun.listen({ unix: "\\0regauth-listen:127.0.0.1:${port}", socket: { data() {} } });\nconsole.log("held");\nsetInterval(() => {}, 1000);\n`,
      );
      chmodSync(dirname(script), 0o755);
      chmodSync(script, 0o644);
      const squatter = Bun.spawn(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, script],
        { stdout: "pipe", stderr: "inherit" },
      );
      try {
        const reader = squatter.stdout.getReader();
        expect(new TextDecoder().decode((await reader.read()).value)).toContain("held");
        const server = await startRegauth({
          configYaml: configYaml(2, PULL).replace("{{PORT}}", String(port)),
        });
        try {
          expect(server.stderr.text).toContain(
            "another user's process holds this address's regauth lock; starting without it",
          );
          await server.stderr.waitFor(/msg="worker serving" worker=1 pid=\d+/, 20_000);
          expect([...(await workersSeen(server, 40))].sort()).toEqual([0, 1]);
        } finally {
          await server.stop();
        }
      } finally {
        squatter.kill();
        await squatter.exited;
      }
    },
    60_000,
  );

  it("stops a regauth on 127.0.0.1 or localhost while one on the wildcard of that port is starting", async () => {
    const dir = makeTempDir("lock-spelling-");
    const port = await freePort();
    // A regauth on 0.0.0.0:PORT holds this from before its probe; it does not listen yet.
    const lock = Bun.listen({ unix: `\0regauth-listen:0.0.0.0:${port}`, socket: { data() {} } });
    try {
      for (const host of ["127.0.0.1", "localhost"]) {
        const result = await run(
          [BINARY, "serve", "--data-dir", join(dir, "data"), "--addr", `${host}:${port}`],
          {
            timeoutMs: 20_000,
          },
        );
        expect(result.exitCode).toBe(1);
        expect(result.stderr).toContain(
          `cannot listen on ${host}:${port}: regauth pid ${process.pid} holds 0.0.0.0:${port}, which shares this port`,
        );
        expect(existsSync(join(dir, "data"))).toBe(false);
      }
    } finally {
      lock.stop(true);
    }
  }, 30_000);

  it("names the process of this user that holds it", async () => {
    const dir = makeTempDir("lock-pid-");
    const port = await freePort();
    const lock = Bun.listen({ unix: `\0regauth-listen:127.0.0.1:${port}`, socket: { data() {} } });
    try {
      const result = await run(
        [BINARY, "serve", "--data-dir", join(dir, "data"), "--addr", `127.0.0.1:${port}`],
        {
          timeoutMs: 20_000,
        },
      );
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toContain(`(or one that is starting: pid ${process.pid})`);
    } finally {
      lock.stop(true);
    }
  }, 30_000);
});

describe("server.workers: a worker serves the supervisor's config or none", () => {
  it("a worker restarted after an edit nobody reloaded does not serve the edit; the reload brings it back with it", async () => {
    const server = await startTwo();
    const configPath = join(server.dir, "auth_config.yml");
    try {
      const pid = Number((await server.stderr.waitFor(/msg="worker serving" worker=1 pid=(\d+)/))[1]);
      // Written, not reloaded (yet): the server serves pull only.
      writeFileSync(configPath, configYaml(2, PULL_PUSH).replaceAll("{{PORT}}", String(server.port)));
      process.kill(pid, "SIGKILL");
      await server.stderr.waitFor(
        new RegExp(
          `msg="worker serving" worker=1 pid=(?!${pid}\\b)\\d+|the config file differs from the config this server serves`,
        ),
        20_000,
      );
      expect(new Set(await aliceActions(server, 30))).toEqual(new Set(["pull"]));
      server.proc.kill("SIGHUP");
      await server.stderr.waitFor(/msg="config reloaded"/, 20_000);
      await server.stderr.waitFor(new RegExp(`msg="worker serving" worker=1 pid=(?!${pid}\\b)\\d+`), 30_000);
      expect(new Set(await aliceActions(server, 30))).toEqual(new Set(["pull,push"]));
      expect([...(await workersSeen(server, 40))].sort()).toEqual([0, 1]);
    } finally {
      await server.stop();
    }
  }, 90_000);
});

describe("server.workers: a revocation made through one process holds in every process at once", () => {
  const api = async (base: string, method: string, path: string, auth: string, body?: unknown) => {
    const response = await fetch(`${base}/api/v1${path}`, {
      method,
      keepalive: false,
      headers: {
        connection: "close",
        authorization: auth,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, json: (await response.json()) as Record<string, unknown> };
  };

  /** `count` token requests for dave-team/app, each on a new connection: status and actions. */
  async function answers(server: Regauth, authorization: string, count = 30): Promise<string[]> {
    const got: string[] = [];
    for (let i = 0; i < count; i++) {
      const response = await freshFetch(
        `${server.url}/auth?service=registry&scope=repository:dave-team/app:pull,push`,
        { authorization },
      );
      if (response.status !== 200) {
        got.push(String(response.status));
        continue;
      }
      const access = decodeToken(((await response.json()) as { token: string }).token).claims.access as {
        actions: string[];
      }[];
      got.push(access.flatMap((a) => a.actions).join(",") || "none");
    }
    return got;
  }

  it("a revoked grant, a revoked access token, a changed password and a disabled account", async () => {
    const server = await startRegauth({
      configYaml: "server:\n  addr: 127.0.0.1:{{PORT}}\n  workers: 2\ntoken:\n  issuer: workers-e2e\n",
    });
    try {
      await server.stderr.waitFor(/msg="worker serving" worker=1 pid=\d+/, 20_000);
      const admin = basic("admin", (await server.stdout.waitFor(/^password: (\S+)$/m))[1] as string);
      expect(
        (await api(server.url, "POST", "/users", admin, { name: "dave", password: "dave-pw-1" })).status,
      ).toBe(201);
      const grant = { grantee: "dave", pattern: "dave-team/*", level: "write" };
      expect((await api(server.url, "POST", "/permissions", admin, grant)).status).toBe(201);
      const token = await api(server.url, "POST", "/tokens", basic("dave", "dave-pw-1"), {
        name: "ci",
        scopes: ["push"],
        repository_patterns: ["dave-team/*"],
      });
      expect(token.status).toBe(201);
      const withToken = basic("ci", token.json.secret as string);
      // Both processes answer, and each has seen (cached) dave's password, grant and token.
      expect([...(await workersSeen(server, 40))].sort()).toEqual([0, 1]);
      expect(new Set(await answers(server, basic("dave", "dave-pw-1")))).toEqual(new Set(["pull,push"]));
      expect(new Set(await answers(server, withToken))).toEqual(new Set(["pull,push"]));

      const revokeGrant = `/permissions?grantee=dave&pattern=${encodeURIComponent("dave-team/*")}`;
      expect((await api(server.url, "DELETE", revokeGrant, admin)).status).toBe(200);
      expect(new Set(await answers(server, basic("dave", "dave-pw-1")))).toEqual(new Set(["none"]));
      expect((await api(server.url, "POST", "/permissions", admin, grant)).status).toBe(201);
      expect(new Set(await answers(server, basic("dave", "dave-pw-1")))).toEqual(new Set(["pull,push"]));

      expect((await api(server.url, "DELETE", `/tokens/${token.json.id}`, admin)).status).toBe(200);
      expect(new Set(await answers(server, withToken))).toEqual(new Set(["401"]));

      const changed = await api(server.url, "PUT", "/users/dave/password", admin, { password: "dave-pw-2" });
      expect(changed.status).toBe(200);
      // The old password logged in from here before: the throttle lets it through (known good),
      // so every one of these is a password check, and every process refuses it.
      expect(new Set(await answers(server, basic("dave", "dave-pw-1")))).toEqual(new Set(["401"]));
      expect(new Set(await answers(server, basic("dave", "dave-pw-2")))).toEqual(new Set(["pull,push"]));

      expect((await api(server.url, "PATCH", "/users/dave", admin, { enabled: false })).status).toBe(200);
      expect(new Set(await answers(server, basic("dave", "dave-pw-2")))).toEqual(new Set(["401"]));
    } finally {
      await server.stop();
    }
  }, 90_000);
});
