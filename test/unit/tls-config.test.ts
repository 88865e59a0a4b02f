/**
 * server.tls_min_version, tls_cipher_suites and tls_curve_preferences (docker_auth
 * reference.yml §server): docker_auth's spellings (Go's names, or numbers as Go's
 * strconv.ParseUint(s, 0, 16) reads them) turned into what Bun.serve's TLS (BoringSSL) takes,
 * and a clear error for what it cannot honour (issue 8: TLS 1.2 offered CBC-SHA1 with no way
 * to restrict it).
 */
import { beforeAll, describe, expect, it } from "bun:test";
import { prepareConfig } from "../../src/config/load.ts";
import { bunTlsOptions, DEFAULT_TLS12_CIPHERS, TLS12, TLS13 } from "../../src/config/tls.ts";
import { ConfigError } from "../../src/errors.ts";
import { makeTempDir } from "../helpers.ts";
import { type KeyFixture, makeKey } from "../key-fixtures.ts";

let serverKey: KeyFixture;
beforeAll(() => {
  serverKey = makeKey({ kind: "ec", curve: "prime256v1", encoding: "pkcs8" });
});

async function loadServer(server: Record<string, unknown>) {
  return prepareConfig(
    {
      server: {
        addr: "127.0.0.1:0",
        certificate: serverKey.certificatePath,
        key: serverKey.keyPath,
        ...server,
      },
      token: { issuer: "t" },
    },
    "test config",
    { dataDir: makeTempDir(), env: {} },
  );
}

async function problemsOf(server: Record<string, unknown>) {
  try {
    await loadServer(server);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error("the config loaded");
}

describe("defaults", () => {
  it("TLS 1.2 minimum and ECDHE with AEAD suites only (no CBC, no SHA-1, no static RSA)", async () => {
    const options = bunTlsOptions((await loadServer({})).config.server);
    expect(options).toEqual({ minVersion: TLS12, ciphers: DEFAULT_TLS12_CIPHERS });
    for (const suite of DEFAULT_TLS12_CIPHERS.split(":")) {
      expect(suite).toStartWith("ECDHE-");
      expect(suite).toMatch(/GCM|CHACHA20-POLY1305/);
    }
  });
});

describe("accepted spellings", () => {
  const cases: [string, Record<string, unknown>, Record<string, unknown>][] = [
    ["TLS12", { tls_min_version: "TLS12" }, { minVersion: TLS12 }],
    ["TLS13", { tls_min_version: "TLS13" }, { minVersion: TLS13 }],
    ["hex string", { tls_min_version: "0x0304" }, { minVersion: TLS13 }],
    ["YAML number", { tls_min_version: 0x0303 }, { minVersion: TLS12 }],
    ["decimal string", { tls_min_version: "772" }, { minVersion: TLS13 }],
    [
      "Go suite names",
      {
        tls_cipher_suites: [
          "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
          "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        ],
      },
      { ciphers: "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256" },
    ],
    [
      "Go's legacy CHACHA20 aliases and suite numbers",
      { tls_cipher_suites: ["TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", 0xc02b, "0xc030"] },
      { ciphers: "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384" },
    ],
    [
      "OpenSSL names, and a CBC suite asked for explicitly",
      { tls_cipher_suites: ["ECDHE-ECDSA-AES128-GCM-SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"] },
      { ciphers: "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-SHA" },
    ],
    [
      "curves by Go name and number",
      { tls_curve_preferences: ["X25519", "P256", 24, "P521"] },
      { ecdhCurve: "X25519:P-256:P-384:P-521" },
    ],
  ];
  for (const [title, server, expected] of cases) {
    it(title, async () => {
      expect(bunTlsOptions((await loadServer(server)).config.server)).toMatchObject(expected);
    });
  }
});

describe("what cannot be honoured is a config error naming why", () => {
  const cases: [string, Record<string, unknown>, string, RegExp][] = [
    ["TLS 1.0", { tls_min_version: "TLS10" }, "server.tls_min_version", /RFC 8996/],
    ["TLS 1.1 as a number", { tls_min_version: "0x0302" }, "server.tls_min_version", /RFC 8996/],
    ["SSL 3.0", { tls_min_version: "SSL30" }, "server.tls_min_version", /SSL 3\.0/],
    ["an unknown name", { tls_min_version: "TLS14" }, "server.tls_min_version", /TLS12 or TLS13/],
    ["junk", { tls_min_version: "0x" }, "server.tls_min_version", /TLS12 or TLS13/],
    [
      "TLS 1.3 suites (not configurable)",
      { tls_cipher_suites: ["TLS_AES_128_GCM_SHA256"] },
      "server.tls_cipher_suites.0",
      /TLS 1\.3 suites are not configurable/,
    ],
    ["RC4", { tls_cipher_suites: ["TLS_ECDHE_RSA_WITH_RC4_128_SHA"] }, "server.tls_cipher_suites.0", /RC4/],
    [
      "a suite BoringSSL lacks",
      { tls_cipher_suites: ["TLS_RSA_WITH_AES_128_CBC_SHA256"] },
      "server.tls_cipher_suites.0",
      /BoringSSL/,
    ],
    ["an unknown suite", { tls_cipher_suites: ["TLS_BOGUS"] }, "server.tls_cipher_suites.0", /unknown/],
    ["an empty list", { tls_cipher_suites: [] }, "server.tls_cipher_suites", /at least one/],
    [
      "suites with a TLS 1.3 minimum (docker_auth's rule)",
      { tls_min_version: "TLS13", tls_cipher_suites: ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"] },
      "server.tls_cipher_suites",
      /TLS 1\.3/,
    ],
    ["an unknown curve", { tls_curve_preferences: ["P224"] }, "server.tls_curve_preferences.0", /unknown/],
    ["an empty curve list", { tls_curve_preferences: [] }, "server.tls_curve_preferences", /at least one/],
  ];
  for (const [title, server, path, message] of cases) {
    it(title, async () => {
      const problems = await problemsOf(server);
      const problem = problems.find((p) => p.path === path);
      expect(problem?.message ?? JSON.stringify(problems)).toMatch(message);
    });
  }

  it("TLS settings without server.certificate and key", async () => {
    let problems: { path: string; message: string }[] = [];
    try {
      await prepareConfig(
        { server: { addr: "127.0.0.1:0", tls_min_version: "TLS13" }, token: { issuer: "t" } },
        "test config",
        { dataDir: makeTempDir(), env: {} },
      );
    } catch (error) {
      problems = (error as ConfigError).problems;
    }
    expect(problems.find((p) => p.path === "server.tls_min_version")?.message).toMatch(
      /no effect without server\.certificate/,
    );
  });

  it("reports every problem at once", async () => {
    const problems = await problemsOf({
      tls_min_version: "TLS10",
      tls_cipher_suites: ["TLS_BOGUS", "TLS_AES_128_GCM_SHA256"],
      tls_curve_preferences: ["P224"],
    });
    expect(problems.map((p) => p.path).sort()).toEqual([
      "server.tls_cipher_suites.0",
      "server.tls_cipher_suites.1",
      "server.tls_curve_preferences.0",
      "server.tls_min_version",
    ]);
  });
});
