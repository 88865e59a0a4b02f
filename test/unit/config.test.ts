/**
 * Config loading: every problem is reported at once with its key path (security.md §7.3 G), and a
 * docker_auth auth_config.yml with the sections we share loads unchanged.
 */
import { afterAll, beforeAll, describe, expect, it, spyOn } from "bun:test";
import { generateKeyPairSync } from "node:crypto";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { PasswordVerifier } from "../../src/authn/password-verifier.ts";
import {
  EMBEDDED_DEFAULT_SOURCE,
  embeddedDefaultConfig,
  loadConfigFile,
  prepareConfig,
} from "../../src/config/load.ts";
import { databasePath, openDatabase } from "../../src/db/database.ts";
import { ConfigError, type ConfigProblem } from "../../src/errors.ts";
import { log } from "../../src/log.ts";
import { rotateKey } from "../../src/token/key-set.ts";
import { selfSignedCertificate, toPem } from "../../src/token/keys.ts";
import { makeTempDir } from "../helpers.ts";
import { type KeyFixture, makeKey } from "../key-fixtures.ts";

// Key-file warnings (short-lived test certificates, world-readable temp files) are expected here.
beforeAll(() => log.setLevel("error"));
afterAll(() => log.setLevel("info"));

const MINIMAL = 'token:\n  issuer: "test"\n';

function writeConfig(yaml: string, dir = makeTempDir()): string {
  const path = join(dir, "config.yml");
  writeFileSync(path, yaml);
  return path;
}

async function load(yaml: string, env: Record<string, string> = {}) {
  return loadConfigFile(writeConfig(yaml), { env, dataDir: makeTempDir() });
}

/** The problems a config file produces; fails the test when it loads. */
async function problemsOf(yaml: string, env: Record<string, string> = {}): Promise<ConfigProblem[]> {
  return problemsOfPath(writeConfig(yaml), env);
}

async function problemsOfPath(path: string, env: Record<string, string> = {}): Promise<ConfigProblem[]> {
  try {
    await loadConfigFile(path, { env, dataDir: makeTempDir() });
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error("config loaded but problems were expected");
}

/** An EC key and a self-signed certificate made as if the clock were `offsetMs` away from now. */
function keyWithCertificateMadeAt(offsetMs: number): { keyPath: string; certificatePath: string } {
  const dir = makeTempDir();
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const realNow = Date.now();
  const clock = spyOn(Date, "now").mockImplementation(() => realNow + offsetMs);
  let certificate: Buffer;
  try {
    certificate = selfSignedCertificate(privateKey, publicKey, "shifted clock");
  } finally {
    clock.mockRestore();
  }
  const keyPath = join(dir, "token.key");
  const certificatePath = join(dir, "token.crt");
  writeFileSync(keyPath, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
  writeFileSync(certificatePath, toPem("CERTIFICATE", certificate));
  return { keyPath, certificatePath };
}

async function expectConfigError(loading: Promise<unknown>): Promise<ConfigProblem[]> {
  try {
    await loading;
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error("config loaded but problems were expected");
}

function expectProblem(problems: ConfigProblem[], path: string, message: RegExp): void {
  const found = problems.find((p) => p.path === path && message.test(p.message));
  if (!found) throw new Error(`no problem at ${path} matching ${message}; got ${JSON.stringify(problems)}`);
}

function yamlString(text: string): string {
  return JSON.stringify(text); // a JSON string is a valid YAML double-quoted scalar
}

function tokenSection(key: KeyFixture | { keyPath: string; certificatePath: string }): string {
  return `token:\n  issuer: test\n  key: ${yamlString(key.keyPath)}\n  certificate: ${yamlString(key.certificatePath)}\n`;
}

describe("reading the file", () => {
  it("missing file", async () => {
    expectProblem(await problemsOfPath("/nonexistent/regauth.yml"), "", /no such file/);
  });
  it("a directory instead of a file", async () => {
    expectProblem(await problemsOfPath(makeTempDir()), "", /is a directory/);
  });
  it("YAML syntax error", async () => {
    expectProblem(await problemsOf("token:\n  issuer: [unclosed\n"), "", /YAML syntax error/);
  });
  it("tabs as indentation", async () => {
    expectProblem(await problemsOf("token:\n\tissuer: x\n"), "", /YAML syntax error/);
  });
  it("a document that is not a mapping", async () => {
    expectProblem(await problemsOf("- a\n- b\n"), "", /mapping/);
  });
  it("an empty file lacks token", async () => {
    expectProblem(await problemsOf(""), "token", /required/);
  });
  it("the smallest valid file loads with defaults", async () => {
    const { config, signingKey } = await load(MINIMAL);
    expect(config.server.addr).toBe("127.0.0.1:5001");
    expect(config.token.expiration).toBe(300);
    expect(signingKey?.alg).toBe("ES256");
    expect(config.audit).toEqual({
      enabled: true,
      retention_days: 90,
      max_events: 1_000_000,
      token_decisions: "all",
    });
    expect(config.access_tokens).toEqual({});
  });
});

describe("schema: unknown keys and wrong types", () => {
  const cases: { name: string; yaml: string; path: string; message: RegExp }[] = [
    {
      name: "typo'd server.adr",
      yaml: `server:\n  adr: ":5001"\n${MINIMAL}`,
      path: "server.adr",
      message: /unknown key/,
    },
    { name: "unknown top-level section", yaml: `${MINIMAL}acls: []\n`, path: "acls", message: /unknown key/ },
    {
      name: "a docker_auth back-end regauth does not implement",
      yaml: `${MINIMAL}github_auth:\n  organization: acme\n`,
      path: "github_auth",
      message: /docker_auth option regauth does not support/,
    },
    {
      // Supported since issue 16 (test/unit/acme-config.test.ts); host is what it cannot do without.
      name: "docker_auth's LetsEncrypt mode under server, without its host",
      yaml: `server:\n  letsencrypt: {email: a@example.org}\n${MINIMAL}`,
      path: "server.letsencrypt.host",
      message: /required/,
    },
    {
      // docker_auth's docs/auth-methods.md trap: `team` is not a match field, and docker_auth
      // silently ignores it, so the rule matches everyone.
      name: "acl match on team",
      yaml: `${MINIMAL}acl:\n  - match: {team: infrastructure}\n    actions: ["*"]\n`,
      path: "acl.0.match.team",
      message: /unknown key/,
    },
    {
      name: "flow mapping without a space (docker_auth issue #326)",
      yaml: `${MINIMAL}acl:\n  - match: {account:"admin"}\n    actions: ["*"]\n`,
      path: 'acl.0.match.account:"admin"',
      message: /unknown key/,
    },
    {
      name: "unknown user key",
      yaml: `${MINIMAL}users:\n  alice:\n    pasword: x\n`,
      path: "users.alice.pasword",
      message: /unknown key/,
    },
    {
      name: "expiration as a string",
      yaml: 'token:\n  issuer: test\n  expiration: "five"\n',
      path: "token.expiration",
      message: /integer|number/i,
    },
    {
      name: "expiration not an integer",
      yaml: "token:\n  issuer: test\n  expiration: 90.5\n",
      path: "token.expiration",
      message: /integer/i,
    },
    {
      name: "expiration below 60",
      yaml: "token:\n  issuer: test\n  expiration: 59\n",
      path: "token.expiration",
      message: /60/,
    },
    { name: "issuer empty", yaml: 'token:\n  issuer: ""\n', path: "token.issuer", message: /length|1/ },
    { name: "issuer as a list", yaml: "token:\n  issuer: [a]\n", path: "token.issuer", message: /string/i },
    {
      name: "real_ip_pos as text",
      yaml: `server:\n  real_ip_pos: last\n${MINIMAL}`,
      path: "server.real_ip_pos",
      message: /integer|number/i,
    },
    {
      name: "hsts as text",
      yaml: `server:\n  hsts: "maybe"\n${MINIMAL}`,
      path: "server.hsts",
      message: /boolean/i,
    },
    {
      name: "net neither tcp nor unix",
      yaml: `server:\n  net: udp\n${MINIMAL}`,
      path: "server.net",
      message: /./,
    },
    { name: "acl as a mapping", yaml: `${MINIMAL}acl:\n  a: b\n`, path: "acl", message: /array/i },
    {
      name: "acl rule without actions",
      yaml: `${MINIMAL}acl:\n  - match: {}\n`,
      path: "acl.0.actions",
      message: /required/,
    },
    {
      name: "acl rule without match",
      yaml: `${MINIMAL}acl:\n  - actions: []\n`,
      path: "acl.0.match",
      message: /required/,
    },
    {
      name: "log.format not logfmt or json",
      yaml: `${MINIMAL}log:\n  format: text\n`,
      path: "log.format",
      message: /./,
    },
    {
      name: "log.level not a level (docker_auth's -v numbers are not levels)",
      yaml: `${MINIMAL}log:\n  level: 2\n`,
      path: "log.level",
      message: /./,
    },
    {
      name: "unknown key in log",
      yaml: `${MINIMAL}log:\n  verbosity: 2\n`,
      path: "log.verbosity",
      message: /unknown key/,
    },
    {
      name: "unknown key in audit",
      yaml: `${MINIMAL}audit:\n  retention: 30\n`,
      path: "audit.retention",
      message: /unknown key/,
    },
    {
      name: "audit.token_decisions not one of all, denied, none",
      yaml: `${MINIMAL}audit:\n  token_decisions: some\n`,
      path: "audit.token_decisions",
      message: /./,
    },
    {
      name: "negative audit.retention_days",
      yaml: `${MINIMAL}audit:\n  retention_days: -1\n`,
      path: "audit.retention_days",
      message: /greater|minimum|>=/i,
    },
    {
      name: "fractional access_tokens.max_lifetime_days",
      yaml: `${MINIMAL}access_tokens:\n  max_lifetime_days: 1.5\n`,
      path: "access_tokens.max_lifetime_days",
      message: /integer/i,
    },
    {
      name: "zero access_tokens.max_lifetime_days",
      yaml: `${MINIMAL}access_tokens:\n  max_lifetime_days: 0\n`,
      path: "access_tokens.max_lifetime_days",
      message: /greater|minimum|>=/i,
    },
    {
      name: "labels not lists",
      yaml: `${MINIMAL}users:\n  "":\n    labels: {group: admins}\n`,
      path: "users..labels.group",
      message: /array/i,
    },
  ];
  for (const { name, yaml, path, message } of cases) {
    it(name, async () => {
      expectProblem(await problemsOf(yaml), path, message);
    });
  }

  it("reports every schema problem in one pass", async () => {
    const problems = await problemsOf(
      'server:\n  adr: ":5001"\n  hsts: 3\ntoken:\n  issuer: "${UNSET_ISSUER}"\n  expiration: 10\nacl:\n  - match: {team: x}\n    actions: []\n',
    );
    for (const path of ["server.adr", "server.hsts", "token.issuer", "token.expiration", "acl.0.match.team"])
      expect(problems.map((p) => p.path)).toContain(path);
  });

  it("a schema problem in one section does not hide semantic problems in others", async () => {
    const problems = await problemsOf(
      `server:\n  adr: ":5001"\n${MINIMAL}users:\n  bob: {password: plain}\nacl:\n  - match: {name: "/(/", ip: "10.0.0.0/33"}\n    actions: []\n`,
    );
    expect(problems.map((p) => p.path).sort()).toEqual(
      ["acl.0.match.ip", "acl.0.match.name", "server.adr", "users.bob.password"].sort(),
    );
  });

  it("an unset variable is reported once, not again as a bad hash", async () => {
    const problems = await problemsOf(`${MINIMAL}users:\n  bob: {password: "\${BOB_HASH}"}\n`);
    expect(problems).toEqual([
      { path: "users.bob.password", message: "environment variable BOB_HASH is not set" },
    ]);
  });

  it("reports every semantic problem in one pass", async () => {
    const problems = await problemsOf(
      `server:\n  addr: nonsense\n  path_prefix: auth\n${MINIMAL}users:\n  bob: {}\n  carol: {password: plain}\nacl:\n  - match: {name: "/(/", ip: "10.0.0.0/33"}\n    actions: []\n`,
    );
    expect(problems.map((p) => p.path).sort()).toEqual(
      [
        "acl.0.match.ip",
        "acl.0.match.name",
        "server.addr",
        "server.path_prefix",
        "users.bob.password",
        "users.carol.password",
      ].sort(),
    );
  });
});

describe("environment substitution", () => {
  it("replaces ${VAR} from the environment", async () => {
    const { config } = await load('token:\n  issuer: "${ISSUER}-auth"\n', { ISSUER: "acme" });
    expect(config.token.issuer).toBe("acme-auth");
  });
  it("an unset variable is an error at its key path", async () => {
    expectProblem(
      await problemsOf('token:\n  issuer: "${UNSET_VAR}"\n'),
      "token.issuer",
      /UNSET_VAR is not set/,
    );
  });
  it("an unset variable inside a list is reported with its index", async () => {
    const yaml = `${MINIMAL}acl:\n  - match: {account: "\${ADMIN_NAME}"}\n    actions: ["*"]\n`;
    expectProblem(await problemsOf(yaml), "acl.0.match.account", /ADMIN_NAME is not set/);
  });
  it("$${X} is a literal ${X}", async () => {
    const { config } = await load('token:\n  issuer: "$${X}"\n', { X: "substituted" });
    expect(config.token.issuer).toBe("${X}");
  });
  it("an empty variable is allowed (it is set) and then validated", async () => {
    expectProblem(await problemsOf('token:\n  issuer: "${EMPTY}"\n', { EMPTY: "" }), "token.issuer", /./);
  });
  it("ACL placeholders are not environment variables", async () => {
    const { config } = await load(`${MINIMAL}acl:\n  - match: {name: "\${account}/*"}\n    actions: ["*"]\n`);
    expect(config.acl?.[0]?.match.name).toBe("${account}/*");
  });
});

describe("semantic checks", () => {
  const cases: { name: string; yaml: string; path: string; message: RegExp }[] = [
    {
      name: "path_prefix without a leading /",
      yaml: `server:\n  path_prefix: auth\n${MINIMAL}`,
      path: "server.path_prefix",
      message: /\//,
    },
    {
      name: "addr without a port",
      yaml: `server:\n  addr: localhost\n${MINIMAL}`,
      path: "server.addr",
      message: /HOST:PORT/,
    },
    {
      name: "addr with a port too large",
      yaml: `server:\n  addr: "127.0.0.1:70000"\n${MINIMAL}`,
      path: "server.addr",
      message: /HOST:PORT/,
    },
    {
      name: "addr with a name port",
      yaml: `server:\n  addr: "127.0.0.1:http"\n${MINIMAL}`,
      path: "server.addr",
      message: /HOST:PORT/,
    },
    {
      name: "unbracketed IPv6 addr",
      yaml: `server:\n  addr: "::1:5001"\n${MINIMAL}`,
      path: "server.addr",
      message: /HOST:PORT/,
    },
    {
      name: "a user without a password",
      yaml: `${MINIMAL}users:\n  bob: {}\n`,
      path: "users.bob.password",
      message: /anonymous/,
    },
    {
      name: "a plain-text password",
      yaml: `${MINIMAL}users:\n  bob: {password: hunter2}\n`,
      path: "users.bob.password",
      message: /bcrypt/,
    },
    {
      name: "an md5-crypt hash",
      yaml: `${MINIMAL}users:\n  bob: {password: "$1$abc$Zx1ZXSkJgEXpTNsKDXW2e."}\n`,
      path: "users.bob.password",
      message: /bcrypt/,
    },
    {
      name: "a truncated bcrypt hash",
      yaml: `${MINIMAL}users:\n  bob: {password: "$2y$05$LO.vzwpWC5LZGqThvEfznu8qhb5SG"}\n`,
      path: "users.bob.password",
      message: /bcrypt/,
    },
    {
      name: "invalid ACL regex",
      yaml: `${MINIMAL}acl:\n  - match: {account: "/(/"}\n    actions: []\n`,
      path: "acl.0.match.account",
      message: /regular expression/,
    },
    {
      name: "invalid ACL glob",
      yaml: `${MINIMAL}acl:\n  - match: {name: "[a-"}\n    actions: []\n`,
      path: "acl.0.match.name",
      message: /glob/,
    },
    {
      name: "invalid ACL CIDR",
      yaml: `${MINIMAL}acl:\n  - match: {ip: "10.0.0.0/33"}\n    actions: []\n`,
      path: "acl.0.match.ip",
      message: /CIDR/,
    },
    {
      name: "ACL IP with a wildcard",
      yaml: `${MINIMAL}acl:\n  - match: {ip: "192.168.0.*"}\n    actions: []\n`,
      path: "acl.0.match.ip",
      message: /CIDR/,
    },
    {
      name: "invalid label pattern in the second rule",
      yaml: `${MINIMAL}acl:\n  - match: {}\n    actions: []\n  - match: {labels: {group: "/[/"}}\n    actions: []\n`,
      path: "acl.1.match.labels.group",
      message: /regular expression/,
    },
    {
      name: "token certificate without key",
      yaml: 'token:\n  issuer: test\n  certificate: "/etc/hostname"\n',
      path: "token",
      message: /together/,
    },
    {
      name: "server certificate without key",
      yaml: `server:\n  certificate: "/etc/hostname"\n${MINIMAL}`,
      path: "server",
      message: /together/,
    },
  ];
  for (const { name, yaml, path, message } of cases) {
    it(name, async () => {
      expectProblem(await problemsOf(yaml), path, message);
    });
  }

  it('the anonymous user "" may have no password', async () => {
    const { config } = await load(`${MINIMAL}users:\n  "": {}\n`);
    expect(config.users?.[""]).toEqual({});
  });

  it("accepts bracketed IPv6 and :port listen addresses", async () => {
    for (const addr of ["[::1]:5001", ":5001", "0.0.0.0:0"])
      expect((await load(`server:\n  addr: "${addr}"\n${MINIMAL}`)).config.server.addr).toBe(addr);
  });

  it("a trailing / of path_prefix is dropped", async () => {
    expect((await load(`server:\n  path_prefix: /auth-server/\n${MINIMAL}`)).config.server.path_prefix).toBe(
      "/auth-server",
    );
  });
});

describe("signing keys and certificates", () => {
  let rsa: KeyFixture;
  let ec: KeyFixture;
  beforeAll(() => {
    rsa = makeKey({ kind: "rsa", bits: 2048, encoding: "pkcs1" });
    ec = makeKey({ kind: "ec", curve: "P-384", encoding: "sec1" });
  });

  it("loads a key and its certificate", async () => {
    const { signingKey } = await load(tokenSection(ec));
    expect(signingKey?.alg).toBe("ES384");
    expect(signingKey?.certificates).toHaveLength(1);
  });

  it("an unreadable key file (a directory)", async () => {
    const dir = makeTempDir();
    mkdirSync(join(dir, "token.key"));
    const problems = await problemsOf(
      tokenSection({ keyPath: join(dir, "token.key"), certificatePath: ec.certificatePath }),
    );
    expectProblem(problems, "token.key", /cannot load private key.*is a directory/);
  });

  it("a missing key file", async () => {
    const problems = await problemsOf(
      tokenSection({ keyPath: "/nonexistent/token.key", certificatePath: ec.certificatePath }),
    );
    expectProblem(problems, "token.key", /no such file/);
  });

  it.skipIf(process.getuid?.() === 0)("a key file without read permission", async () => {
    const dir = makeTempDir();
    const keyPath = join(dir, "token.key");
    writeFileSync(keyPath, "x", { mode: 0o000 });
    expectProblem(
      await problemsOf(tokenSection({ keyPath, certificatePath: ec.certificatePath })),
      "token.key",
      /permission denied/,
    );
  });

  it("a file that is not a key", async () => {
    const problems = await problemsOf(
      tokenSection({ keyPath: ec.certificatePath, certificatePath: ec.certificatePath }),
    );
    expectProblem(problems, "token.key", /cannot load private key.*PKCS#1, PKCS#8 or SEC1/);
  });

  it("a certificate that is not a certificate", async () => {
    const problems = await problemsOf(tokenSection({ keyPath: ec.keyPath, certificatePath: ec.keyPath }));
    expectProblem(problems, "token.certificate", /no CERTIFICATE/);
  });

  it("a key and a certificate that do not belong together", async () => {
    const problems = await problemsOf(
      tokenSection({ keyPath: ec.keyPath, certificatePath: rsa.certificatePath }),
    );
    expectProblem(problems, "token.certificate", /does not belong/);
  });

  it("an RSA key of 1024 bits", async () => {
    const weak = makeKey({ kind: "rsa", bits: 1024, encoding: "pkcs8" });
    expectProblem(await problemsOf(tokenSection(weak)), "token.key", /1024 bits; at least 2048/);
  });

  it("an unsupported curve (secp256k1)", async () => {
    const k1 = makeKey({ kind: "openssl-ec", curve: "secp256k1" });
    expectProblem(await problemsOf(tokenSection(k1)), "token.key", /P-256, P-384 or P-521/);
  });

  it("an unsupported key type (ed25519)", async () => {
    const ed = makeKey({ kind: "ed25519" });
    expectProblem(await problemsOf(tokenSection(ed)), "token.key", /unsupported key type ed25519/);
  });

  it("an expired certificate", async () => {
    const files = keyWithCertificateMadeAt(-11 * 365 * 86_400_000);
    expectProblem(await problemsOf(tokenSection(files)), "token.certificate", /expired/);
  });

  it("the HTTPS pair signs tokens when token has no key (docker_auth's rule)", async () => {
    const { signingKey, keyPaths } = await load(
      `server:\n  certificate: ${yamlString(rsa.certificatePath)}\n  key: ${yamlString(rsa.keyPath)}\n${MINIMAL}`,
    );
    expect(signingKey?.alg).toBe("RS256");
    expect(keyPaths?.keyPath).toBe(rsa.keyPath);
  });

  describe("an HTTPS pair that serve could not use is reported at load (check-config), not after start-up", () => {
    const garbage = () => {
      const file = join(makeTempDir(), "garbage.pem");
      writeFileSync(file, "not a PEM file\n");
      return file;
    };
    const serverSection = (certificatePath: string, keyPath: string) =>
      `server:\n  certificate: ${yamlString(certificatePath)}\n  key: ${yamlString(keyPath)}\n`;
    it.each([
      [
        "a key that is not a PEM private key",
        () => serverSection(rsa.certificatePath, garbage()),
        "server.key",
        /private key/,
      ],
      [
        "a certificate that is not a PEM certificate",
        () => serverSection(garbage(), rsa.keyPath),
        "server.certificate",
        /certificate/,
      ],
      [
        "a key that is not the certificate's",
        () =>
          serverSection(rsa.certificatePath, makeKey({ kind: "rsa", bits: 2048, encoding: "pkcs1" }).keyPath),
        "server.key",
        /does not match server\.certificate/,
      ],
    ])("%s", async (_, server, path, message) => {
      // token has its own pair: the HTTPS one is read only by the listener.
      const tokenKey = makeKey({ kind: "rsa", bits: 2048, encoding: "pkcs1" });
      expectProblem(await problemsOf(`${server()}${tokenSection(tokenKey)}`), path, message);
    });
  });

  it("an unreadable HTTPS key is reported at server.key", async () => {
    const problems = await problemsOf(
      `server:\n  certificate: ${yamlString(rsa.certificatePath)}\n  key: /nonexistent/server.key\n${MINIMAL}`,
    );
    expectProblem(problems, "server.key", /cannot/);
  });
});

describe("a docker_auth config loads unchanged", () => {
  it("examples/reference.yml's shared sections", async () => {
    const dir = makeTempDir();
    const server = makeKey({ kind: "rsa", bits: 2048, encoding: "pkcs1" }, dir);
    // The shape and comments of docker_auth's examples/reference.yml, with its users and ACL.
    const yaml = `# A docker_auth auth_config.yml
server:  # Server settings.
  # Address to listen on.
  addr: ":5001"
  # TLS certificate and key.
  certificate: ${yamlString(server.certificatePath)}
  key: ${yamlString(server.keyPath)}
  # real_ip_header: "X-Forwarded-For"

token:  # Settings for the tokens.
  issuer: "Acme auth server"  # Must match issuer in the Registry config.
  expiration: 900

users:
  # Password is specified as a BCrypt hash. Use htpasswd -B to generate.
  "admin":
    password: "$2y$05$LO.vzwpWC5LZGqThvEfznu8qhb5SGqvBSWY1J3yZ4AxtMRZ3kN5jC"  # badmin
  "test":
    password: "$2y$05$WuwBasGDAgr.QCbGIjKJaep4dhxeai9gNZdmBnQXqpKly57oNutya"  # 123
  "": {}  # Allow anonymous (no "docker login") access.

acl:
  - match: {ip: "127.0.0.0/8"}
    actions: ["*"]
    comment: "Allow everything from localhost (IPv4)"
  - match: {ip: "::1"}
    actions: ["*"]
    comment: "Allow everything from localhost (IPv6)"
  - match: {ip: "172.17.0.1"}
    actions: ["*"]
    comment: "Allow everything from the local Docker bridge address"
  - match: {account: "admin"}
    actions: ["*"]
    comment: "Admin has full access to everything."
  - match: {account: "test", name: "test-*"}
    actions: ["*"]
    comment: "User \\"test\\" has full access to test-* images but nothing else. (1)"
  - match: {account: "test"}
    actions: []
    comment: "User \\"test\\" has full access to test-* images but nothing else. (2)"
  - match: {account: "/.+/", name: "\${account}/*"}
    actions: ["*"]
    comment: "Logged in users have full access to images that are in their 'namespace'"
  - match: {account: "/.+/", type: "registry", name: "catalog"}
    actions: ["*"]
    comment: "Logged in users can query the catalog."
  - match: {account: "/.+/"}
    actions: ["pull"]
    comment: "Logged in users can pull all images."
  - match: {account: "", name: "hello-world"}
    actions: ["pull"]
    comment: "Anonymous users can pull \\"hello-world\\"."
  - match: {account: "/^(.+)@test\\\\.com$/", name: "\${account:1}/*"}
    actions: ["*"]
  - match: {labels: {"group": "VIP"}}
    actions: ["push"]
  - match: {account: "/.+/", name: "\${labels:project}-{labels:tier}/*"}
    actions: ["push"]
`;
    const loaded = await loadConfigFile(writeConfig(yaml, dir), { env: {}, dataDir: makeTempDir() });
    expect(loaded.config.server.addr).toBe(":5001");
    expect(loaded.config.token.expiration).toBe(900);
    expect(loaded.acl.rules).toHaveLength(13);
    expect(loaded.signingKey?.alg).toBe("RS256");
    // docker_auth's $2y$ hashes verify as they did there.
    const verifier = new PasswordVerifier();
    const admin = loaded.config.users?.admin?.password ?? "";
    expect(await verifier.verify("admin", "badmin", admin)).toBe(true);
    expect(await verifier.verify("test", "123", loaded.config.users?.test?.password ?? "")).toBe(true);
  });
});

describe("the embedded default and the data directory", () => {
  it("generates a key once in the data directory and reuses it", async () => {
    const dataDir = join(makeTempDir(), "state");
    const first = await prepareConfig(embeddedDefaultConfig(), EMBEDDED_DEFAULT_SOURCE, { dataDir, env: {} });
    expect(first.generatedKey).toBe(true);
    expect(first.config.server.addr).toBe("127.0.0.1:5001");
    expect(first.config.token.services).toEqual(["registry"]);
    expect(first.keyPaths?.keyPath.startsWith(dataDir)).toBe(true);
    openDatabase(databasePath(dataDir)).close(); // serve creates it: a whole installation
    const second = await prepareConfig(embeddedDefaultConfig(), EMBEDDED_DEFAULT_SOURCE, {
      dataDir,
      env: {},
    });
    expect(second.generatedKey).toBe(false);
    expect(second.signingKey?.kid).toBe(first.signingKey?.kid ?? "");
  });

  for (const lost of ["token.crt", "token.key"]) {
    it(`refuses to start when ${lost} was lost, instead of silently rotating the key`, async () => {
      const dataDir = join(makeTempDir(), "state");
      const first = await prepareConfig(embeddedDefaultConfig(), EMBEDDED_DEFAULT_SOURCE, {
        dataDir,
        env: {},
      });
      openDatabase(databasePath(dataDir)).close();
      rmSync(join(dataDir, lost));
      const problems = await expectConfigError(
        prepareConfig(embeddedDefaultConfig(), EMBEDDED_DEFAULT_SOURCE, { dataDir, env: {} }),
      );
      expectProblem(problems, "data_dir", new RegExp(`${lost} is missing: restore it from a backup`));
      expect(first.generatedKey).toBe(true);
    });
  }

  it("$STATE_DIRECTORY is the data directory when none is given", async () => {
    const stateDirectory = makeTempDir();
    const loaded = await prepareConfig(embeddedDefaultConfig(), EMBEDDED_DEFAULT_SOURCE, {
      env: { STATE_DIRECTORY: `${stateDirectory}:/other` },
    });
    expect(loaded.dataDir).toBe(stateDirectory);
  });

  it.each(["", ":"])(
    "an empty $STATE_DIRECTORY (%j) is as if unset: ./regauth-data, not the working directory itself",
    async (value) => {
      const loaded = await prepareConfig(embeddedDefaultConfig(), EMBEDDED_DEFAULT_SOURCE, {
        env: { STATE_DIRECTORY: value },
        createFiles: false,
      });
      expect(loaded.dataDir).toBe(resolve("regauth-data"));
    },
  );

  it("a data directory that is a file is a problem at data_dir", async () => {
    const file = join(makeTempDir(), "not-a-dir");
    writeFileSync(file, "");
    let problems: ConfigProblem[] = [];
    try {
      await loadConfigFile(writeConfig(`${MINIMAL}data_dir: ${yamlString(file)}\n`), { env: {} });
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      problems = error.problems;
    }
    expectProblem(problems, "data_dir", /data directory/);
  });

  it("check-config mode creates nothing", async () => {
    const dataDir = join(makeTempDir(), "never-created");
    const loaded = await loadConfigFile(writeConfig(MINIMAL), { env: {}, dataDir, createFiles: false });
    expect(loaded.signingKey).toBeNull();
    expect(await Bun.file(join(dataDir, "token.key")).exists()).toBe(false);
  });
});

describe("check-config reports the files serve would refuse", () => {
  async function checkOnly(yaml: string): Promise<ConfigProblem[]> {
    const dataDir = join(makeTempDir(), "never-created");
    try {
      await loadConfigFile(writeConfig(yaml), {
        env: {},
        dataDir,
        createFiles: false,
        checkFilesServeReads: true,
      });
    } catch (error) {
      if (error instanceof ConfigError) return error.problems;
      throw error;
    }
    return [];
  }

  it("a reload and the other commands do not read these files, and are not refused for them", async () => {
    // An operator who may not read the service's metrics token still runs `regauth user list`;
    // a SIGHUP that changes the ACL is not refused because the token file went away.
    const yaml = `${MINIMAL}metrics: {enabled: true, bearer_token_file: /nonexistent/token}\nnotifications: {secret_file: /nonexistent/secret}\n`;
    const dataDir = join(makeTempDir(), "never-created");
    const loaded = await loadConfigFile(writeConfig(yaml), { env: {}, dataDir, createFiles: false });
    expect(loaded.config.metrics.bearer_token_file).toBe("/nonexistent/token");
  });

  it("a metrics.bearer_token_file that does not exist", async () => {
    const problems = await checkOnly(
      `${MINIMAL}metrics: {enabled: true, bearer_token_file: /nonexistent/token}\n`,
    );
    expectProblem(problems, "metrics.bearer_token_file", /cannot read \/nonexistent\/token: .*ENOENT/);
  });

  it("a metrics.bearer_token_file too short to be a token", async () => {
    const file = join(makeTempDir(), "token");
    writeFileSync(file, "short\n");
    const problems = await checkOnly(
      `${MINIMAL}metrics: {enabled: true, bearer_token_file: ${yamlString(file)}}\n`,
    );
    expectProblem(problems, "metrics.bearer_token_file", /at least 16 characters/);
  });

  it("metrics.bearer_token and bearer_token_file together", async () => {
    const file = join(makeTempDir(), "token");
    writeFileSync(file, "0123456789abcdef0123\n");
    const problems = await checkOnly(
      `${MINIMAL}metrics: {enabled: true, bearer_token: 0123456789abcdef, bearer_token_file: ${yamlString(file)}}\n`,
    );
    expectProblem(problems, "metrics", /not both/);
  });

  it("a readable metrics.bearer_token_file, and one of disabled metrics (serve never reads it)", async () => {
    const file = join(makeTempDir(), "token");
    writeFileSync(file, "0123456789abcdef0123\n");
    expect(
      await checkOnly(`${MINIMAL}metrics: {enabled: true, bearer_token_file: ${yamlString(file)}}\n`),
    ).toEqual([]);
    expect(
      await checkOnly(`${MINIMAL}metrics: {enabled: false, bearer_token_file: /nonexistent/token}\n`),
    ).toEqual([]);
  });

  it("a notifications.secret_file that does not exist or is too short", async () => {
    expectProblem(
      await checkOnly(`${MINIMAL}notifications: {secret_file: /nonexistent/secret}\n`),
      "notifications.secret_file",
      /notifications secret: .*\/nonexistent\/secret/,
    );
    const file = join(makeTempDir(), "secret");
    writeFileSync(file, "short\n");
    expectProblem(
      await checkOnly(`${MINIMAL}notifications: {secret_file: ${yamlString(file)}}\n`),
      "notifications.secret_file",
      /16 to 1024 printable ASCII characters/,
    );
    expect(
      await checkOnly(`${MINIMAL}notifications: {enabled: false, secret_file: /nonexistent/secret}\n`),
    ).toEqual([]);
  });
});

describe("certificate validity window", () => {
  it("a certificate that is not valid yet", async () => {
    const files = keyWithCertificateMadeAt(30 * 86_400_000);
    expectProblem(await problemsOf(tokenSection(files)), "token.certificate", /not valid before/);
  });
});

describe("lost keys after a rotation: nothing that registries trust is replaced", () => {
  const issuer = { token: { issuer: "i", expiration: 300, rotation_overlap_seconds: 600 } };
  /** A data directory whose token-1 took over long ago: token is expired, token-1 signs. */
  async function rotatedLongAgo() {
    const dataDir = join(makeTempDir(), "data");
    await prepareConfig(issuer, "test", { dataDir, env: {} });
    openDatabase(databasePath(dataDir)).close();
    rotateKey(dataDir, Math.floor(Date.now() / 1000) - 10_000, 600, 300);
    const loaded = await prepareConfig(issuer, "test", { dataDir, env: {} });
    return { dataDir, token1Kid: loaded.signingKey?.kid };
  }

  it("--reinitialize after token.key was lost: token-1 keeps signing, and stays where it is", async () => {
    const { dataDir, token1Kid } = await rotatedLongAgo();
    rmSync(join(dataDir, "token.key"));
    rmSync(join(dataDir, "token.crt"));
    // Without --reinitialize: refused, saying the rotated keys stay.
    await expect(prepareConfig(issuer, "test", { dataDir, env: {} })).rejects.toThrow(/rotation state/);
    const loaded = await prepareConfig(issuer, "test", { dataDir, env: {}, reinitialize: true });
    expect(loaded.signingKey?.kid).toBe(token1Kid as string);
    expect(existsSync(join(dataDir, "token-1.key"))).toBe(true);
    expect(existsSync(join(dataDir, "token-keys.json"))).toBe(true);
  });

  it("the database and token.key gone: refused, not a first run that signs with a new key", async () => {
    const { dataDir } = await rotatedLongAgo();
    for (const name of ["token.key", "token.crt", "regauth.db"]) rmSync(join(dataDir, name));
    await expect(prepareConfig(issuer, "test", { dataDir, env: {} })).rejects.toThrow(
      /regauth\.db is missing, but .*token-keys\.json/,
    );
  });

  it("a listed key lost: refused with what to do, and nothing moved or generated", async () => {
    const { dataDir } = await rotatedLongAgo();
    rmSync(join(dataDir, "token-1.key"));
    await expect(prepareConfig(issuer, "test", { dataDir, env: {} })).rejects.toThrow(
      /token-keys\.json lists token-1 \(current\).*Restore token-1\.key and token-1\.crt from your backup/,
    );
    expect(existsSync(join(dataDir, "token-1.crt"))).toBe(true);
    expect(existsSync(join(dataDir, "token-keys.json"))).toBe(true);
  });
});
