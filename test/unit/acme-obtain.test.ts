/**
 * One order against CAs that misbehave (src/acme/obtain.ts): every failure is an AcmeError
 * within a bound, whatever the CA does, so a start is refused and a renewal retried with backoff.
 */
import { afterEach, describe, expect, it } from "bun:test";
import { generateKeyPairSync } from "node:crypto";
import type { LetsEncryptConfig } from "../../src/acme/config-schema.ts";
import { AcmeError, obtainCertificate, retryAfterMs } from "../../src/acme/obtain.ts";

const accountKeyPem = Buffer.from(
  generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" }),
);

let servers: ReturnType<typeof Bun.serve>[] = [];
afterEach(() => {
  for (const server of servers) server.stop(true);
  servers = [];
});

/** A "CA" answering every request with `respond`; plain HTTP on loopback (the schema's https rule is checked at load). */
function fakeCa(respond: (request: Request) => Response | Promise<Response>): LetsEncryptConfig {
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, idleTimeout: 0, fetch: respond });
  servers.push(server);
  return {
    host: "auth.example.org",
    directory_url: `http://127.0.0.1:${server.port}/dir`,
    http_challenge_addr: "127.0.0.1:0",
  };
}

function order(section: LetsEncryptConfig, orderTimeoutMs?: number) {
  return obtainCertificate({
    section,
    accountKeyPem,
    caPem: null,
    openHttpChallenge: () => ({ close: async () => {} }),
    ...(orderTimeoutMs === undefined ? {} : { orderTimeoutMs }),
  });
}

describe("obtainCertificate against a misbehaving CA", () => {
  it("gives up on a CA that trickles its answer (a byte every 200 ms) at the order's deadline", async () => {
    const section = fakeCa(
      () =>
        new Response(
          new ReadableStream({
            async pull(controller) {
              await Bun.sleep(200);
              controller.enqueue(new TextEncoder().encode(" "));
            },
          }),
          { headers: { "content-type": "application/json" } },
        ),
    );
    const startedMs = Date.now();
    const error = await order(section, 1500).catch((e: unknown) => e);
    const tookMs = Date.now() - startedMs;
    expect(error).toBeInstanceOf(AcmeError);
    expect((error as Error).message).toContain("did not finish within 1.5 s");
    expect(tookMs).toBeLessThan(4000);
  });

  it("refuses an answer larger than 1 MiB", async () => {
    const section = fakeCa(() => new Response(`{"x":"${"a".repeat(2 * 1_048_576)}"}`));
    const error = await order(section, 10_000).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AcmeError);
    expect((error as Error).message).toContain("it sent more than 1 MiB");
  });

  it("refuses a gzip bomb (64 MiB of zeros in 64 kB) by what it inflates to", async () => {
    const bomb = Bun.gzipSync(new Uint8Array(64 * 1_048_576));
    const section = fakeCa(
      () =>
        new Response(bomb, { headers: { "content-type": "application/json", "content-encoding": "gzip" } }),
    );
    const error = await order(section, 10_000).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AcmeError);
    expect((error as Error).message).toContain("it sent more than 1 MiB");
  });

  it("says what is wrong with a directory that is not JSON", async () => {
    const section = fakeCa(
      () => new Response("<html>hello</html>", { headers: { "content-type": "text/html" } }),
    );
    const error = await order(section, 10_000).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AcmeError);
    expect((error as Error).message).not.toContain("    at ");
    expect((error as Error).message).toContain("ACME directory");
  });
});

describe("what a CA says in its refusal", () => {
  it("is logged bounded: a 100 kB problem detail is cut, not copied into every retry's log line", async () => {
    const section = fakeCa((request) => {
      const { origin, pathname } = new URL(request.url);
      if (pathname === "/dir")
        return Response.json({
          newNonce: `${origin}/nonce`,
          newAccount: `${origin}/account`,
          newOrder: `${origin}/order`,
        });
      if (pathname === "/nonce") return new Response(null, { headers: { "replay-nonce": "bm9uY2U" } });
      return Response.json(
        { type: "urn:ietf:params:acme:error:malformed", detail: `no ${"x".repeat(100_000)}` },
        { status: 400, headers: { "content-type": "application/problem+json", "replay-nonce": "bm9uY2U" } },
      );
    });
    const error = await order(section, 10_000).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AcmeError);
    expect((error as Error).message).toContain("no xxx");
    expect((error as Error).message.length).toBeLessThan(1500);
  });
});

describe("secrets in a failure", () => {
  it("carry no JWS (signed request body), no key and no CA page when the account request fails", async () => {
    const bodies: string[] = [];
    const section = fakeCa(async (request) => {
      const { origin, pathname } = new URL(request.url);
      if (pathname === "/dir")
        return Response.json({
          newNonce: `${origin}/nonce`,
          newAccount: `${origin}/account`,
          newOrder: `${origin}/order`,
        });
      if (pathname === "/nonce") return new Response(null, { headers: { "replay-nonce": "bm9uY2U" } });
      bodies.push(await request.text());
      return new Response("<html>upstream exploded</html>", {
        status: 500,
        headers: { "content-type": "text/html", "replay-nonce": "bm9uY2U" },
      });
    });
    const error = await order(section, 10_000).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AcmeError);
    expect(bodies.length).toBeGreaterThan(0);
    const message = (error as Error).message;
    const jws = JSON.parse(bodies[0] as string) as { protected: string; signature: string };
    for (const secret of [
      jws.protected,
      jws.signature,
      "PRIVATE KEY",
      accountKeyPem.toString().split("\n")[1] as string,
    ])
      expect(message).not.toContain(secret);
    expect(message).not.toContain("<html>");
    expect(message).toContain("auth.example.org");
  });
});

describe("retryAfterMs (RFC 9110 §10.2.3)", () => {
  const nowMs = Date.parse("2026-12-01T00:00:00Z");
  it.each([
    ["3600", 3_600_000],
    [" 120 ", 120_000],
    ["0", 0],
    ["Tue, 01 Dec 2026 01:00:00 GMT", 3_600_000],
    ["Mon, 30 Nov 2026 00:00:00 GMT", 0], // a date gone by: at once (the backoff still applies)
    ["-5", null],
    ["1e9", null],
    ["soon", null],
    ["", null],
    [undefined, null],
    [["3600"], null],
  ] as const)("%p is %p ms", (value, expected) => {
    expect(retryAfterMs(value, nowMs)).toBe(expected);
  });
});
