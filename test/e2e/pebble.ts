/**
 * Debian's pebble (Let's Encrypt's test CA, RFC 8555) on loopback for the ACME tests (issue 16):
 * its own HTTPS certificate from a throwaway CA, private ports, no sleeps, real validation
 * (PEBBLE_VA_ALWAYS_VALID=0: it fetches the http-01 answer from regauth), and a fresh
 * authorization per order, so every renewal validates again.
 */
import { afterAll } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTempDir } from "../helpers.ts";
import { freePort, issueServerCertificate, makeTestCa, Output } from "./harness.ts";

export interface Pebble {
  directoryUrl: string;
  /** The root of pebble's listener certificate: regauth's server.letsencrypt.ca_file. */
  listenerCaFile: string;
  /** Pebble's issuing root (management API /roots/0): what clients of regauth trust. */
  rootFile: string;
  /** Where pebble fetches http-01 answers: regauth's http_challenge_addr. */
  challengeAddr: string;
  log: Output;
  /** Orders pebble accepted so far (its "Added order" log lines). */
  orders(): number;
  stop(): Promise<void>;
}

export function hasPebble(): boolean {
  return Bun.which("pebble") !== null;
}

export async function startPebble(options: { validitySeconds: number }): Promise<Pebble> {
  const dir = makeTempDir("pebble-");
  const ca = await makeTestCa();
  const tls = await issueServerCertificate(ca, "pebble");
  const [acmePort, managementPort, httpPort, tlsPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const configPath = join(dir, "pebble-config.json");
  writeFileSync(
    configPath,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${managementPort}`,
        certificate: tls.certificate,
        privateKey: tls.key,
        httpPort,
        tlsPort,
        ocspResponderURL: "",
        externalAccountBindingRequired: false,
        certificateValidityPeriod: options.validitySeconds,
      },
    }),
  );
  const proc = Bun.spawn(["pebble", "-config", configPath, "-strict=false"], {
    cwd: dir,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      PEBBLE_VA_NOSLEEP: "1",
      PEBBLE_VA_ALWAYS_VALID: "0",
      PEBBLE_WFE_NONCEREJECT: "0",
      PEBBLE_AUTHZREUSE: "0",
    },
  });
  afterAll(async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
    await proc.exited;
  });
  const log = new Output(proc.stdout);
  await log.waitFor(/ACME directory available at/, 15_000);
  // pebble logs that line before its listeners accept (the management one starts in a goroutine
  // of its own): a fetch right away was once refused in a full run. Both must answer first.
  const trustPebble = { ca: Bun.file(ca.certificate) };
  const answering = async (url: string): Promise<Response> => {
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        return await fetch(url, { tls: trustPebble });
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await Bun.sleep(50);
      }
    }
  };
  await answering(`https://127.0.0.1:${acmePort}/dir`);
  const root = await answering(`https://127.0.0.1:${managementPort}/roots/0`);
  if (root.status !== 200) throw new Error(`pebble /roots/0: ${root.status}`);
  const rootFile = join(dir, "pebble-root.pem");
  writeFileSync(rootFile, await root.text());
  return {
    directoryUrl: `https://127.0.0.1:${acmePort}/dir`,
    listenerCaFile: ca.certificate,
    rootFile,
    challengeAddr: `127.0.0.1:${httpPort}`,
    log,
    orders: () => log.text.match(/Added order /g)?.length ?? 0,
    async stop() {
      proc.kill("SIGTERM");
      await proc.exited;
    },
  };
}
