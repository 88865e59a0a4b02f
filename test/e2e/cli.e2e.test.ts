/** The compiled binary's command line: exit codes, help, config errors, signals. */
import { describe, expect, it } from "bun:test";
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { hashPassword, makeTempDir } from "../helpers.ts";
import {
  BINARY,
  ensureBinary,
  freePort,
  makeSelfSignedKeyPair,
  openssl,
  run,
  startRegauth,
} from "./harness.ts";

ensureBinary();
const COMMANDS = ["serve", "check-config", "hash-password", "registry-config"];
const STACK_TRACE = /\bat \S+ \(|\.ts:\d+|\/\$bunfs\//;

const regauth = (args: string[], options: Parameters<typeof run>[1] = {}) => run([BINARY, ...args], options);

function writeConfig(text: string): string {
  const path = join(makeTempDir("cli-config-"), "auth_config.yml");
  writeFileSync(path, text);
  return path;
}

/** True when something accepts TCP connections on 127.0.0.1:port. */
function isListening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

describe("version and help", () => {
  it("prints the version", async () => {
    const result = await regauth(["--version"]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(/^regauth \d+\.\d+\.\d+\n$/);
  });

  it("prints help for regauth with exit 0", async () => {
    for (const flag of ["--help", "-h", "help"]) {
      const result = await regauth([flag]);
      expect(result.exitCode).toBe(0);
      for (const command of COMMANDS) expect(result.stdout).toContain(command);
    }
  });

  for (const command of COMMANDS) {
    it(`prints help for ${command} with exit 0`, async () => {
      for (const flag of ["--help", "-h"]) {
        const result = await regauth([command, flag]);
        expect(result.exitCode).toBe(0);
        expect(result.stdout).toContain(`regauth ${command}`);
        expect(result.stderr).toBe("");
      }
    });

    it(`rejects an unknown flag for ${command} with exit 2`, async () => {
      const result = await regauth([command, "--no-such-flag"]);
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toContain("unknown option --no-such-flag");
    });
  }

  it("rejects an unknown command with exit 2 and a usage message", async () => {
    const result = await regauth(["srve"]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('unknown command "srve"');
    expect(result.stderr).toContain("Usage:");
  });

  it("exits 2 with the usage when no command is given", async () => {
    expect((await regauth([])).exitCode).toBe(2);
  });

  it("exits 2 when a value flag has no value or check-config no file", async () => {
    expect((await regauth(["serve", "--config"])).exitCode).toBe(2);
    expect((await regauth(["check-config"])).exitCode).toBe(2);
    expect((await regauth(["serve", "stray-argument"])).exitCode).toBe(2);
  });
});

describe("check-config", () => {
  it("exits 0 on a valid docker_auth-style file", async () => {
    const path = writeConfig(`
server: {addr: ":5001"}
token: {issuer: "Acme auth server", expiration: 900}
users:
  admin: {password: "${hashPassword("x")}"}
  "": {}
acl:
  - match: {account: admin}
    actions: ["*"]
  - match: {account: "/.+/", name: "\${account}/*"}
    actions: ["*"]
  - match: {account: ""}
    actions: [pull]
`);
    const result = await regauth(["check-config", path]);
    expect(result.stdout).toContain("ok (2 users, 3 ACL rules)");
    expect(result.exitCode).toBe(0);
  });

  it("exits 1 and lists every problem with its key path, a typo'd key included", async () => {
    const path = writeConfig(`
server:
  adress: 127.0.0.1:5001
token:
  issuer: 5
  expiration: soon
users:
  alice: {password: "plain-text-password"}
acl:
  - match: {acount: alice}
    actions: [pull]
  - match: {ip: 10.0.0.0/33, name: "/(unclosed/"}
    actions: [pull]
`);
    const result = await regauth(["check-config", path]);
    expect(result.exitCode).toBe(1);
    const problems = result.stdout.split("\n").filter((line) => line.startsWith("  - "));
    const paths = problems.map((line) => line.slice(4, line.indexOf(": ")));
    expect(paths).toEqual([
      "server.adress",
      "token.issuer",
      "token.expiration",
      "acl.0.match.acount",
      "users.alice.password",
    ]);
    expect(result.stdout).toContain("unknown key");
    expect(result.stdout).not.toMatch(STACK_TRACE);
  });

  it("takes the file as --config FILE too, like every other command", async () => {
    const valid = writeConfig("token: {issuer: x}\n");
    const ok = await regauth(["check-config", "--config", valid]);
    expect(ok.stderr).toBe("");
    expect(ok.stdout).toBe(`${valid}: ok (0 users, 0 ACL rules)\n`);
    expect(ok.exitCode).toBe(0);
    const invalid = await regauth(["check-config", "--config", writeConfig("token: {issuer: 5}\n")]);
    expect(invalid.exitCode).toBe(1);
    expect(invalid.stdout).toContain("  - token.issuer: ");
    const both = await regauth(["check-config", "--config", valid, valid]);
    expect(both.exitCode).toBe(2);
    expect(both.stderr).toContain("give the file once: regauth check-config FILE or --config FILE, not both");
    const help = await regauth(["check-config", "--help"]);
    expect(help.stdout).toContain("regauth check-config FILE | --config FILE");
  });

  it("lists every semantic problem when the shape is right", async () => {
    const path = writeConfig(`
token: {issuer: x}
users:
  alice: {password: "plain-text-password"}
  bob: {}
acl:
  - match: {ip: 10.0.0.0/33, name: "/(unclosed/"}
    actions: [pull]
`);
    const result = await regauth(["check-config", path]);
    expect(result.exitCode).toBe(1);
    for (const expected of [
      "users.alice.password",
      "users.bob.password",
      "acl.0.match.ip",
      "acl.0.match.name",
    ])
      expect(result.stdout).toContain(`  - ${expected}: `);
  });

  it("reports a YAML syntax error, exit 1", async () => {
    const result = await regauth(["check-config", writeConfig("token:\n  issuer: [unclosed\n")]);
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toContain("YAML syntax error");
    expect(result.stdout).not.toMatch(STACK_TRACE);
  });

  it("reports an unset ${VAR}, exit 1", async () => {
    const env = { ...process.env };
    delete env.REGAUTH_E2E_UNSET;
    const path = writeConfig('token:\n  issuer: "${REGAUTH_E2E_UNSET}"\n');
    const proc = Bun.spawnSync([BINARY, "check-config", path], { env });
    expect(proc.exitCode).toBe(1);
    expect(proc.stdout.toString()).toContain(
      "token.issuer: environment variable REGAUTH_E2E_UNSET is not set",
    );
  });

  it("reports a missing file, exit 1", async () => {
    const result = await regauth(["check-config", "/nonexistent/auth_config.yml"]);
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toContain("no such file");
  });

  it("reports an unreadable metrics.bearer_token_file as serve does", async () => {
    const dataDir = join(makeTempDir("metrics-token-"), "data");
    const path = writeConfig(
      `token: {issuer: x}\ndata_dir: ${dataDir}\nmetrics: {enabled: true, bearer_token_file: /nonexistent/metrics-token}\n`,
    );
    const expected = "metrics.bearer_token_file: cannot read /nonexistent/metrics-token";
    const served = await regauth(["serve", "--config", path, "--addr", `127.0.0.1:${await freePort()}`], {
      timeoutMs: 10_000,
    });
    expect(served.exitCode).toBe(1);
    expect(served.stderr).toContain(expected);
    const checked = await regauth(["check-config", path]);
    expect(checked.exitCode).toBe(1);
    expect(checked.stdout).toContain(expected);
  });

  it("reports a key and certificate that do not match", async () => {
    const dir = makeTempDir("mismatch-");
    const a = await makeSelfSignedKeyPair(dir, "a", "ec-p256-sec1");
    const b = await makeSelfSignedKeyPair(dir, "b", "ec-p256-sec1");
    const result = await regauth([
      "check-config",
      writeConfig(`token: {issuer: x, key: ${a.key}, certificate: ${b.certificate}}\n`),
    ]);
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toContain(
      `token.certificate: certificate ${b.certificate} does not belong to the key`,
    );
  });

  it("reports a key that is not a key, and a key it may not read", async () => {
    const dir = makeTempDir("unreadable-");
    const pair = await makeSelfSignedKeyPair(dir, "token", "ec-p256-sec1");
    const garbage = join(dir, "garbage.key");
    writeFileSync(garbage, "not a key\n", { mode: 0o600 });
    const notKey = await regauth([
      "check-config",
      writeConfig(`token: {issuer: x, key: ${garbage}, certificate: ${pair.certificate}}\n`),
    ]);
    expect(notKey.exitCode).toBe(1);
    expect(notKey.stdout).toContain(
      `token.key: cannot load private key ${garbage}: no PEM private key in the file`,
    );

    const encrypted = join(dir, "encrypted.key");
    await openssl(["genrsa", "-aes256", "-passout", "pass:secret", "-out", encrypted, "2048"]);
    chmodSync(encrypted, 0o600);
    const needsPassphrase = await regauth([
      "check-config",
      writeConfig(`token: {issuer: x, key: ${encrypted}, certificate: ${pair.certificate}}\n`),
    ]);
    expect(needsPassphrase.exitCode).toBe(1);
    expect(needsPassphrase.stdout).toContain(
      `token.key: cannot load private key ${encrypted}: the key is encrypted`,
    );

    // Permission denied: root reads anything, so run as nobody when we are root.
    chmodSync(pair.key, 0o000);
    chmodSync(dir, 0o755);
    const configPath = writeConfig(
      `token: {issuer: x, key: ${pair.key}, certificate: ${pair.certificate}}\n`,
    );
    chmodSync(join(configPath, ".."), 0o755);
    chmodSync(configPath, 0o644);
    const asNobody =
      process.getuid?.() === 0 ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] : [];
    const denied = await run([...asNobody, BINARY, "check-config", configPath]);
    expect(denied.exitCode).toBe(1);
    expect(denied.stdout).toContain(`token.key: cannot load private key ${pair.key}: permission denied`);
  });
});

describe("key list", () => {
  it("only reads: in a directory without a data directory it creates nothing and says where it looked", async () => {
    const cwd = makeTempDir("key-list-");
    expect(process.env.STATE_DIRECTORY).toBeUndefined(); // else that would be the data directory
    const result = await regauth(["key", "list"], { cwd });
    expect(result.exitCode).toBe(1);
    const looked = join(cwd, "regauth-data");
    expect(result.stderr).toContain(`no signing key in ${looked} (no such directory)`);
    expect(result.stderr).toContain("--data-dir DIR");
    expect(result.stderr).toContain("--config FILE");
    expect(result.stdout).toBe("");
    expect(existsSync(looked)).toBe(false);
  });

  it("lists the keys of the data directory serve made", async () => {
    const dataDir = join(makeTempDir("key-list-"), "data");
    const made = await regauth(["registry-config", "--data-dir", dataDir]); // the first run makes the key
    expect(made.exitCode).toBe(0);
    const listed = await regauth(["key", "list", "--data-dir", dataDir]);
    expect(listed.stderr).toBe("");
    expect(listed.exitCode).toBe(0);
    expect(listed.stdout).toMatch(/^KID\tSTATE\t.*\n[A-Z2-7:]+\tcurrent\ttoken\t/);
  });
});

describe("serve", () => {
  it("refuses a missing config file: exit 1, a clear message, nothing listening", async () => {
    const result = await regauth(["serve", "--config", "/nonexistent/auth_config.yml"], {
      timeoutMs: 10_000,
    });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain("/nonexistent/auth_config.yml");
    expect(result.stderr).toContain("no such file");
    expect(result.stderr).not.toMatch(STACK_TRACE);
  });

  it("does not listen when the config is invalid (a key that does not match its certificate)", async () => {
    const dir = makeTempDir("serve-mismatch-");
    const a = await makeSelfSignedKeyPair(dir, "a", "ec-p256-sec1");
    const b = await makeSelfSignedKeyPair(dir, "b", "ec-p256-sec1");
    const port = await freePort();
    const result = await regauth(
      [
        "serve",
        "--config",
        writeConfig(
          `server: {addr: "127.0.0.1:${port}"}\ntoken: {issuer: x, key: ${a.key}, certificate: ${b.certificate}}\n`,
        ),
      ],
      { timeoutMs: 10_000 },
    );
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain("does not belong to the key");
    expect(await isListening(port)).toBe(false);
  });

  it("exits 1 with a clear message when the port is taken", async () => {
    const first = await startRegauth({
      configYaml: 'server: {addr: "127.0.0.1:{{PORT}}"}\ntoken: {issuer: x}\n',
    });
    const result = await regauth(
      ["serve", "--config", writeConfig(`server: {addr: "127.0.0.1:${first.port}"}\ntoken: {issuer: x}\n`)],
      { timeoutMs: 10_000, env: { STATE_DIRECTORY: makeTempDir("state-") } },
    );
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr).not.toMatch(STACK_TRACE);
    expect(result.stderr).toMatch(/in use|EADDRINUSE/i);
    await first.stop();
  });

  it("exits 0 on SIGTERM and on SIGINT, after logging the shutdown", async () => {
    for (const signal of ["SIGTERM", "SIGINT"] as const) {
      const server = await startRegauth({
        configYaml: 'server: {addr: "127.0.0.1:{{PORT}}"}\ntoken: {issuer: x}\n',
      });
      server.proc.kill(signal);
      expect(await server.proc.exited).toBe(0);
      await server.stderr.waitFor(new RegExp(`msg="shutting down" signal=${signal}`));
      expect(await isListening(server.port)).toBe(false);
    }
  });
});

describe("hash-password", () => {
  it("reads the password on stdin and prints a bcrypt hash that verifies", async () => {
    const result = await regauth(["hash-password"], { stdin: "correct horse: battery\n" });
    expect(result.exitCode).toBe(0);
    const hash = result.stdout.trim();
    expect(hash).toMatch(/^\$2b\$10\$/);
    expect(await Bun.password.verify("correct horse: battery", hash)).toBe(true);
    expect(await Bun.password.verify("correct horse: battery\n", hash)).toBe(false);
  });

  it("honours --cost and rejects a silly one", async () => {
    const result = await regauth(["hash-password", "--cost", "4"], { stdin: "pw" });
    expect(result.stdout).toMatch(/^\$2b\$04\$/);
    expect(await Bun.password.verify("pw", result.stdout.trim())).toBe(true);
    expect((await regauth(["hash-password", "--cost", "99"], { stdin: "pw" })).exitCode).toBe(2);
  });

  it("refuses an empty password, exit 1", async () => {
    for (const stdin of ["", "\n"]) {
      const result = await regauth(["hash-password"], { stdin });
      expect(result.exitCode).toBe(1);
      expect(result.stdout).toBe("");
      expect(result.stderr).toContain("empty password");
    }
  });
});

describe("registry-config", () => {
  it("prints realm, service, issuer and rootcertbundle for a config file", async () => {
    const dir = makeTempDir("registry-config-");
    const pair = await makeSelfSignedKeyPair(dir, "token", "rsa-pkcs1");
    const path = writeConfig(`
server: {addr: "127.0.0.1:5999", path_prefix: /registry-auth}
token: {issuer: "Acme auth", key: ${pair.key}, certificate: ${pair.certificate}, services: [registry.example.com]}
`);
    const result = await regauth(["registry-config", "--config", path]);
    expect(result.exitCode).toBe(0);
    const block = (Bun.YAML.parse(result.stdout) as { auth: { token: Record<string, string> } }).auth.token;
    expect(block).toEqual({
      realm: "http://127.0.0.1:5999/registry-auth/auth",
      service: "registry.example.com",
      issuer: "Acme auth",
      rootcertbundle: pair.certificate,
    });
  });

  it("prints the notifications endpoint with the data directory's secret, created 0600 on first use", async () => {
    const dir = makeTempDir("registry-config-");
    const path = writeConfig(
      `server: {addr: "127.0.0.1:5999", path_prefix: /registry-auth}\ntoken: {issuer: regauth}\n`,
    );
    const result = await regauth(["registry-config", "--config", path, "--data-dir", join(dir, "data")]);
    expect(result.exitCode).toBe(0);
    const secretFile = join(dir, "data", "notifications.secret");
    expect(statSync(secretFile).mode & 0o777).toBe(0o600);
    const secret = readFileSync(secretFile, "utf8").trim();
    const printed = Bun.YAML.parse(result.stdout) as {
      notifications: { endpoints: { url: string; headers: { Authorization: string[] } }[] };
    };
    expect(printed.notifications.endpoints[0]?.url).toBe(
      "http://127.0.0.1:5999/registry-auth/registry/events",
    );
    expect(printed.notifications.endpoints[0]?.headers.Authorization).toEqual([`Bearer ${secret}`]);
    // The same secret on every run.
    const again = await regauth(["registry-config", "--config", path, "--data-dir", join(dir, "data")]);
    expect(again.stdout).toBe(result.stdout);
  });

  it("with notifications.enabled false, says nothing about notifications and creates no secret", async () => {
    const dir = makeTempDir("registry-config-");
    const path = writeConfig(
      `server: {addr: "127.0.0.1:5999"}\ntoken: {issuer: regauth}\nnotifications: {enabled: false}\n`,
    );
    const result = await regauth(["registry-config", "--config", path, "--data-dir", join(dir, "data")]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).not.toContain("notifications");
    expect(result.stdout).not.toContain("Bearer");
    expect(existsSync(join(dir, "data", "notifications.secret"))).toBe(false);
  });

  it("reads notifications.secret_file, and refuses one that is too short", async () => {
    const dir = makeTempDir("registry-config-");
    writeFileSync(join(dir, "secret"), "my-own-notification-secret-1234\n");
    writeFileSync(join(dir, "short"), "short\n");
    for (const [file, exitCode] of [
      ["secret", 0],
      ["short", 1],
    ] as const) {
      const path = writeConfig(
        `token: {issuer: regauth}\nnotifications: {secret_file: ${join(dir, file)}}\n`,
      );
      const result = await regauth(["registry-config", "--config", path, "--data-dir", join(dir, "data")]);
      expect(result.exitCode).toBe(exitCode);
      if (exitCode === 0)
        expect(result.stdout).toContain('Authorization: ["Bearer my-own-notification-secret-1234"]');
      else expect(result.stderr).toContain("16 to 1024 printable ASCII characters");
      expect(result.stderr).not.toMatch(STACK_TRACE);
    }
    expect(existsSync(join(dir, "data", "notifications.secret"))).toBe(false);
  });
});
