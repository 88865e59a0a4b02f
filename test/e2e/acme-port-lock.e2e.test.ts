/**
 * One regauth per port with an ACME certificate (issue 16 review): its listener sets SO_REUSEPORT
 * for the certificate swap, so the kernel lets any process of the same user that sets it too bind
 * the port and take half the connections. checkCanListen (a bind without SO_REUSEPORT) refuses a
 * second regauth while the first listens, but not while the first is still ordering its
 * certificate: both passed the check, and both then listened. The per-port lock closes that gap.
 */
import { describe, expect, it } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTempDir } from "../helpers.ts";
import {
  BINARY,
  freePort,
  issueServerCertificate,
  makeTestCa,
  Output,
  run,
  startRegauth,
} from "./harness.ts";
import { hasPebble, startPebble } from "./pebble.ts";

describe.skipIf(!hasPebble())("a second regauth while the first orders its certificate", async () => {
  const pebble = await startPebble({ validitySeconds: 3600 });
  // A directory that answers only when released: the first regauth is held mid-order.
  const ca = await makeTestCa();
  const tls = await issueServerCertificate(ca, "slow-directory");
  let release = () => {};
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let asked = 0;
  const slow = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert: Bun.file(tls.certificate), key: Bun.file(tls.key) },
    async fetch() {
      asked++;
      await released;
      const directory = await fetch(pebble.directoryUrl, { tls: { ca: Bun.file(pebble.listenerCaFile) } });
      return new Response(await directory.text(), { headers: { "content-type": "application/json" } });
    },
  });
  const dir = makeTempDir("port-lock-");
  const bothCas = join(dir, "cas.pem");
  writeFileSync(bothCas, readFileSync(ca.certificate, "utf8") + readFileSync(pebble.listenerCaFile, "utf8"));
  const port = await freePort();
  const configFor = (directoryUrl: string) => `
server:
  addr: "127.0.0.1:${port}"
  letsencrypt:
    host: localhost
    directory_url: ${directoryUrl}
    ca_file: ${bothCas}
    http_challenge_addr: "${pebble.challengeAddr}"
token: {issuer: e2e-issuer}
`;
  writeFileSync(join(dir, "first.yml"), configFor(`https://127.0.0.1:${slow.port}/dir`));
  const first = Bun.spawn(
    [BINARY, "serve", "--config", join(dir, "first.yml"), "--data-dir", join(dir, "first-data")],
    { stdin: "ignore", stdout: "ignore", stderr: "pipe", env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } },
  );
  const firstLog = new Output(first.stderr);

  it("refuses the second start, and the first then serves alone", async () => {
    try {
      await firstLog.waitFor(/ordering a certificate/, 15_000);
      for (let i = 0; i < 100 && asked === 0; i++) await Bun.sleep(50);
      expect(asked).toBeGreaterThan(0); // the first is past its port check, mid-order
      const second = await startRegauth({
        configYaml: configFor(pebble.directoryUrl),
        caFile: pebble.rootFile,
      }).then(
        async (started) => {
          await started.stop();
          return "listening";
        },
        (error: Error) => error.message,
      );
      expect(second).toContain(`cannot listen on 127.0.0.1:${port}: the address is already in use`);
      expect(second).toContain("another regauth"); // this lock's words, or server.workers' lock's (main)
      release();
      await firstLog.waitFor(/msg="regauth listening"/, 20_000);
      expect(first.exitCode).toBeNull();
    } finally {
      release();
      first.kill("SIGTERM");
      await first.exited;
      await slow.stop(true);
    }
  }, 60_000);
});

describe.skipIf(!hasPebble())("a second regauth during the certificate swap", async () => {
  // 6 s certificates: renewed at 4 s, when a second listener joins the port for a second.
  const pebble = await startPebble({ validitySeconds: 6 });
  const regauth = await startRegauth({
    configYaml: `
server:
  addr: "127.0.0.1:{{PORT}}"
  letsencrypt:
    host: localhost
    directory_url: ${pebble.directoryUrl}
    ca_file: ${pebble.listenerCaFile}
    http_challenge_addr: "${pebble.challengeAddr}"
token: {issuer: e2e-issuer}
`,
    caFile: pebble.rootFile,
  });

  it("names another program that joins the port by SO_REUSEPORT itself (nothing can refuse it)", async () => {
    const script = `Bun.serve({hostname: "127.0.0.1", port: ${regauth.port}, reusePort: true, fetch: () => new Response("intruder")}); await Bun.sleep(30000);`;
    expect(regauth.stderr.text).not.toContain("another process listens");
    const intruder = Bun.spawn([process.execPath, "-e", script], { stdout: "ignore", stderr: "ignore" });
    try {
      // Checked when the listener opens and every 10 s after.
      const line = await regauth.stderr.waitFor(
        /msg="another process listens on this port too[^\n]*/,
        20_000,
      );
      expect(line[0]).toContain(`processes="${intruder.pid} `);
      expect(line[0]).toContain("reusePort: true");
    } finally {
      intruder.kill();
      await intruder.exited;
    }
  }, 30_000);

  it("is refused before, during and after the swap", async () => {
    const attempts: { exitCode: number; stderr: string }[] = [];
    let swappedAtMs: number | null = null;
    const deadline = Date.now() + 20_000;
    // Until 2 s past the first swap, one start after another (each takes a fraction of a second).
    while (Date.now() < deadline && (swappedAtMs === null || Date.now() < swappedAtMs + 2000)) {
      attempts.push(
        await run(
          [
            BINARY,
            "serve",
            "--config",
            join(regauth.dir, "auth_config.yml"),
            "--data-dir",
            join(makeTempDir(), "d"),
          ],
          { timeoutMs: 10_000 },
        ),
      );
      await Bun.sleep(100); // two shared cores
      if (swappedAtMs === null && regauth.stderr.text.includes("serving the renewed certificate"))
        swappedAtMs = Date.now();
    }
    console.log(`second starts tried around the swap: ${attempts.length}`);
    // Its own second listener during a swap is not another process: the intruder's line only.
    expect(regauth.stderr.text.match(/another process listens/g)).toHaveLength(1);
    expect(swappedAtMs).not.toBeNull();
    for (const attempt of attempts) {
      expect(attempt.exitCode).toBe(1);
      expect(attempt.stderr).toContain(
        `cannot listen on 127.0.0.1:${regauth.port}: the address is already in use`,
      );
    }
  }, 60_000);
});

describe.skipIf(!hasPebble())("a second regauth on another token port but the same api.addr", async () => {
  const pebble = await startPebble({ validitySeconds: 3600 });
  const apiPort = await freePort();
  const configFor = (tokenPort: string) => `
server:
  addr: "127.0.0.1:${tokenPort}"
  letsencrypt:
    host: localhost
    directory_url: ${pebble.directoryUrl}
    ca_file: ${pebble.listenerCaFile}
    http_challenge_addr: "${pebble.challengeAddr}"
api:
  addr: "127.0.0.1:${apiPort}"
token: {issuer: e2e-issuer}
`;
  const first = await startRegauth({ configYaml: configFor("{{PORT}}"), caFile: pebble.rootFile });

  it("is refused: the API listener's SO_REUSEPORT let it join the first's API port", async () => {
    const dir = makeTempDir("api-port-");
    writeFileSync(join(dir, "second.yml"), configFor(String(await freePort())));
    const second = await run(
      [BINARY, "serve", "--config", join(dir, "second.yml"), "--data-dir", join(dir, "data")],
      { timeoutMs: 20_000 },
    );
    expect(second.exitCode).toBe(1);
    expect(second.stderr).toContain(
      `cannot listen on 127.0.0.1:${apiPort}: the address is already in use (another regauth holds this port`,
    );
    expect(first.stderr.text).not.toContain("another process listens");
  }, 30_000);
});
