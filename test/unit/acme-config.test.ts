/**
 * server.letsencrypt (issue 16): what the schema and its checks accept, and every malformed or
 * hostile value refused with its key path, all in one report.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { LETS_ENCRYPT_DIRECTORY_URL } from "../../src/acme/config-schema.ts";
import { loadConfigFile } from "../../src/config/load.ts";
import { ConfigError, type ConfigProblem } from "../../src/errors.ts";
import { log } from "../../src/log.ts";
import { makeTempDir } from "../helpers.ts";

beforeAll(() => log.setLevel("error"));
afterAll(() => log.setLevel("info"));

const TOKEN = "token:\n  issuer: test\n";
const NOT_PEM = join(makeTempDir(), "not.pem");
writeFileSync(NOT_PEM, "not a pem\n");
const BROKEN_PEM = join(makeTempDir(), "broken.pem");
writeFileSync(BROKEN_PEM, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");

async function loadServer(server: string) {
  const dir = makeTempDir();
  const path = join(dir, "config.yml");
  writeFileSync(path, `server:\n${server}\n${TOKEN}`);
  return loadConfigFile(path, { dataDir: join(dir, "data"), env: {} });
}

async function problemsOf(server: string): Promise<ConfigProblem[]> {
  try {
    await loadServer(server);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error("config loaded but problems were expected");
}

describe("server.letsencrypt", () => {
  it("takes docker_auth's three keys and fills in Let's Encrypt and port 80", async () => {
    const { config } = await loadServer(
      "  addr: ':443'\n  letsencrypt: {host: auth.example.org, email: ops@example.org, cache_dir: /var/cache/x}",
    );
    expect(config.server.letsencrypt).toEqual({
      host: "auth.example.org",
      email: "ops@example.org",
      cache_dir: "/var/cache/x",
      directory_url: LETS_ENCRYPT_DIRECTORY_URL,
      http_challenge_addr: ":80",
    });
  });

  it("lets the tls_* settings apply (they would be refused without a certificate)", async () => {
    const { config } = await loadServer(
      "  letsencrypt: {host: auth.example.org}\n  tls_min_version: TLS13\n  tls_curve_preferences: [X25519]",
    );
    expect(config.server.tls_min_version).toBe("TLS13");
  });

  const refused: { name: string; server: string; path: string; message: RegExp }[] = [
    {
      name: "no host",
      server: "  letsencrypt: {email: a@example.org}",
      path: "server.letsencrypt.host",
      message: /required/,
    },
    {
      name: "an unknown key",
      server: "  letsencrypt: {host: a.example, hosts: [b.example]}",
      path: "server.letsencrypt.hosts",
      message: /unknown key/,
    },
    {
      name: "host as a list",
      server: "  letsencrypt: {host: [a.example]}",
      path: "server.letsencrypt.host",
      message: /string/,
    },
    {
      name: "an empty host",
      server: "  letsencrypt: {host: ''}",
      path: "server.letsencrypt.host",
      message: /length/,
    },
    {
      name: "a URL for host",
      server: "  letsencrypt: {host: 'https://a.example/'}",
      path: "server.letsencrypt.host",
      message: /host name only/,
    },
    {
      name: "a wildcard",
      server: "  letsencrypt: {host: '*.example.org'}",
      path: "server.letsencrypt.host",
      message: /dns-01/,
    },
    {
      name: "a port",
      server: "  letsencrypt: {host: 'a.example:443'}",
      path: "server.letsencrypt.host",
      message: /without a port/,
    },
    {
      name: "capitals",
      server: "  letsencrypt: {host: Auth.Example.org}",
      path: "server.letsencrypt.host",
      message: /lower case: auth\.example\.org/,
    },
    {
      name: "an IP address",
      server: "  letsencrypt: {host: 192.0.2.1}",
      path: "server.letsencrypt.host",
      message: /not a DNS name/,
    },
    {
      name: "a newline",
      server: '  letsencrypt: {host: "a.example\\nb.example"}',
      path: "server.letsencrypt.host",
      message: /not a DNS name/,
    },
    {
      name: "a path traversal",
      server: "  letsencrypt: {host: '..'}",
      path: "server.letsencrypt.host",
      message: /not a DNS name/,
    },
    {
      name: "a leading hyphen",
      server: "  letsencrypt: {host: -a.example}",
      path: "server.letsencrypt.host",
      message: /not a DNS name/,
    },
    {
      name: "a 64-character label",
      server: `  letsencrypt: {host: ${"a".repeat(64)}.example}`,
      path: "server.letsencrypt.host",
      message: /not a DNS name/,
    },
    {
      name: "a 300-character name",
      server: `  letsencrypt: {host: ${"a.".repeat(150)}example}`,
      path: "server.letsencrypt.host",
      message: /length/,
    },
    {
      name: "an email without @",
      server: "  letsencrypt: {host: a.example, email: ops}",
      path: "server.letsencrypt.email",
      message: /length|not an email/,
    },
    {
      name: "an email with a second address",
      server: "  letsencrypt: {host: a.example, email: 'a@example.org,b@evil.example'}",
      path: "server.letsencrypt.email",
      message: /not an email/,
    },
    {
      name: "an email with a newline",
      server: '  letsencrypt: {host: a.example, email: "a@example.org\\nb"}',
      path: "server.letsencrypt.email",
      message: /not an email/,
    },
    {
      name: "a plain-HTTP directory",
      server: "  letsencrypt: {host: a.example, directory_url: 'http://ca.example/dir'}",
      path: "server.letsencrypt.directory_url",
      message: /https/,
    },
    {
      name: "a directory with a password",
      server: "  letsencrypt: {host: a.example, directory_url: 'https://u:p@ca.example/dir'}",
      path: "server.letsencrypt.directory_url",
      message: /password/,
    },
    {
      name: "a directory that is not a URL",
      server: "  letsencrypt: {host: a.example, directory_url: 'ca.example'}",
      path: "server.letsencrypt.directory_url",
      message: /not a URL/,
    },
    {
      name: "a malformed challenge address",
      server: "  letsencrypt: {host: a.example, http_challenge_addr: '80'}",
      path: "server.letsencrypt.http_challenge_addr",
      message: /HOST:PORT/,
    },
    {
      name: "an unreadable ca_file",
      server: "  letsencrypt: {host: a.example, ca_file: /nonexistent/ca.pem}",
      path: "server.letsencrypt.ca_file",
      message: /cannot read/,
    },
    {
      name: "a directory for ca_file",
      server: `  letsencrypt: {host: a.example, ca_file: ${makeTempDir()}}`,
      path: "server.letsencrypt.ca_file",
      message: /is not a file/,
    },
    {
      name: "a ca_file that holds no PEM certificate",
      server: `  letsencrypt: {host: a.example, ca_file: ${NOT_PEM}}`,
      path: "server.letsencrypt.ca_file",
      message: /holds no PEM certificate/,
    },
    {
      name: "a ca_file with a broken certificate",
      server: `  letsencrypt: {host: a.example, ca_file: ${BROKEN_PEM}}`,
      path: "server.letsencrypt.ca_file",
      message: /not a PEM certificate/,
    },
    {
      name: "a trailing dot",
      server: "  letsencrypt: {host: auth.example.org.}",
      path: "server.letsencrypt.host",
      message: /without the trailing dot: auth\.example\.org/,
    },
    {
      name: "an IDN in Unicode",
      server: "  letsencrypt: {host: bücher.example}",
      path: "server.letsencrypt.host",
      message: /not a DNS name/,
    },
    {
      name: "the challenge on the HTTPS port (renewals would find it taken)",
      server: "  addr: ':8443'\n  letsencrypt: {host: a.example, http_challenge_addr: '127.0.0.1:8443'}",
      path: "server.letsencrypt.http_challenge_addr",
      message: /server\.addr's port/,
    },
    {
      name: "a certificate as well",
      server: "  certificate: /etc/x.crt\n  key: /etc/x.key\n  letsencrypt: {host: a.example}",
      path: "server.letsencrypt",
      message: /either/,
    },
    {
      name: "a unix socket",
      server: "  net: unix\n  addr: /tmp/x.sock\n  letsencrypt: {host: a.example}",
      path: "server.letsencrypt",
      message: /net: tcp/,
    },
    {
      name: "TLS 1.1 with it",
      server: "  letsencrypt: {host: a.example}\n  tls_min_version: TLS11",
      path: "server.tls_min_version",
      message: /deprecated/,
    },
    {
      name: "a CBC suite is accepted only when named; an unknown one is not",
      server: "  letsencrypt: {host: a.example}\n  tls_cipher_suites: [TLS_FOO]",
      path: "server.tls_cipher_suites.0",
      message: /unknown cipher suite/,
    },
  ];
  for (const c of refused)
    it(`refuses ${c.name}`, async () => {
      const problems = await problemsOf(c.server);
      const found = problems.find((p) => p.path === c.path && c.message.test(p.message));
      if (!found)
        throw new Error(`no problem at ${c.path} matching ${c.message}; got ${JSON.stringify(problems)}`);
    });

  it("reports every problem of the section in one go", async () => {
    const problems = await problemsOf(
      "  letsencrypt: {host: '*.a.example', email: nobody, directory_url: 'http://x/', http_challenge_addr: x}",
    );
    expect(problems.map((p) => p.path).sort()).toEqual([
      "server.letsencrypt.directory_url",
      "server.letsencrypt.email",
      "server.letsencrypt.host",
      "server.letsencrypt.http_challenge_addr",
    ]);
  });
});
