/**
 * End-to-end harness: the compiled binary next to real peers. Debian's docker-registry
 * (distribution 2.8) with token auth pointed at regauth, skopeo for push/pull, the docker CLI for
 * `docker login` (client-side, no daemon needed). Every process gets free loopback ports and a
 * temporary directory, and is killed when the test file ends.
 */
import { afterAll } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { gzipSync } from "node:zlib";
import { makeTempDir } from "../helpers.ts";
import { freePort } from "./free-port.ts";

export const REPO_ROOT = resolve(import.meta.dir, "../..");
export const BINARY = join(REPO_ROOT, "dist/regauth");

const running: Bun.Subprocess[] = [];

/**
 * Kills `proc` when the current scope ends: the describe block or test that started it (bun:test
 * accepts afterAll in both). A module-level afterAll would not do: this module is evaluated once per
 * `bun test` run, so it would belong to the first test file only, and bun test emits no "exit".
 */
function killWhenScopeEnds(proc: Bun.Subprocess): void {
  running.push(proc);
  afterAll(async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
    await proc.exited;
  });
}

/** Kills every peer started so far (for files that start peers outside a describe block). */
export async function stopAllPeers(): Promise<void> {
  for (const proc of running) if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
  await Promise.all(running.map((p) => p.exited));
  running.length = 0;
}

/** Builds dist/regauth unless it is already there (scripts/test.sh builds it first). */
export function ensureBinary(): string {
  if (!existsSync(BINARY)) {
    const build = Bun.spawnSync(["bun", "run", "build"], {
      cwd: REPO_ROOT,
      stdout: "inherit",
      stderr: "inherit",
    });
    if (build.exitCode !== 0) throw new Error("bun run build failed");
  }
  return BINARY;
}

export { freePort } from "./free-port.ts";

/** Polls `url` until it answers at all; `caFile` makes an https URL verify against a test CA. */
export async function waitForHttp(url: string, timeoutMs = 10_000, caFile?: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const tls = caFile ? { tls: { ca: Bun.file(caFile) } } : {};
  for (;;) {
    try {
      await fetch(url, { signal: AbortSignal.timeout(1000), ...tls });
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs} ms`);
      await Bun.sleep(50);
    }
  }
}

/** Collects a stream into a string that tests can poll (e.g. for the first-run banner). */
export class Output {
  text = "";
  constructor(stream: ReadableStream<Uint8Array>) {
    void (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of stream) this.text += decoder.decode(chunk, { stream: true });
    })();
  }
  async waitFor(pattern: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = this.text.match(pattern);
      if (match) return match;
      if (Date.now() > deadline) throw new Error(`output never matched ${pattern}:\n${this.text}`);
      await Bun.sleep(25);
    }
  }
}

export interface Regauth {
  url: string;
  port: number;
  dataDir: string;
  dir: string;
  proc: Bun.Subprocess<"ignore", "pipe", "pipe">;
  stdout: Output;
  stderr: Output;
  /** The self-signed certificate the registry must trust (rootcertbundle). */
  certificatePath: string;
  stop(): Promise<void>;
}

export interface StartRegauthOptions {
  /** YAML text of the config; `{{PORT}}` and `{{DIR}}` are replaced. Omit for the embedded default. */
  configYaml?: string;
  extraArgs?: string[];
  env?: Record<string, string>;
  /** Reuse a directory (e.g. to restart on the same data). */
  dir?: string;
  /**
   * The `--data-dir` flag: DIR/data by default; null passes no flag, so the config,
   * $STATE_DIRECTORY or ./regauth-data (relative to DIR, the working directory) decide.
   */
  dataDir?: string | null;
  /** The certificate the registry must trust, when the config names its own (token.certificate). */
  certificatePath?: string;
  /** CA that signed server.certificate, so the health check verifies the realm's TLS. */
  caFile?: string;
}

/** Starts the compiled binary and waits until /healthz answers. */
export async function startRegauth(options: StartRegauthOptions = {}): Promise<Regauth> {
  const binary = ensureBinary();
  const dir = options.dir ?? makeTempDir("regauth-e2e-");
  const dataDir = options.dataDir === undefined ? join(dir, "data") : options.dataDir;
  const port = await freePort();
  const args = [binary, "serve", ...(dataDir === null ? [] : ["--data-dir", dataDir])];
  if (options.configYaml !== undefined) {
    const configPath = join(dir, "auth_config.yml");
    writeFileSync(
      configPath,
      options.configYaml.replaceAll("{{PORT}}", String(port)).replaceAll("{{DIR}}", dir),
    );
    args.push("--config", configPath);
  }
  args.push(...(options.extraArgs ?? []));
  const proc = Bun.spawn(args, {
    cwd: dir,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir, ...options.env },
  });
  killWhenScopeEnds(proc);
  const stdout = new Output(proc.stdout);
  const stderr = new Output(proc.stderr);
  // The embedded default listens on 127.0.0.1:5001; configs name their own port via {{PORT}}.
  const listening = await Promise.race([
    // logfmt, or JSON lines (log.format: json).
    stderr.waitFor(/msg="regauth listening".* url=(\S+)|"msg":"regauth listening".*"url":"([^"]+)"/, 15_000),
    proc.exited.then((code) => {
      throw new Error(`regauth exited with ${code}\nstdout:\n${stdout.text}\nstderr:\n${stderr.text}`);
    }),
  ]);
  const url = (listening[1] ?? listening[2]) as string;
  await waitForHttp(`${url}/healthz`, 10_000, options.caFile);
  const dataDirInUse = (stderr.text.match(/ data_dir=(\S+)/)?.[1] ?? join(dir, "data")).replace(/^"|"$/g, "");
  return {
    url,
    port: Number(new URL(url).port),
    dataDir: dataDirInUse,
    dir,
    proc,
    stdout,
    stderr,
    certificatePath: options.certificatePath ?? join(dataDirInUse, "token.crt"),
    async stop() {
      proc.kill("SIGTERM");
      await proc.exited;
    },
  };
}

export interface Registry {
  /** host:port, as image references use it. */
  host: string;
  url: string;
  proc: Bun.Subprocess;
  log: Output;
}

/**
 * Starts Debian's docker-registry with token auth trusting `certificatePath`; with `tls` it
 * serves HTTPS with that certificate (signed by `tls.caFile`).
 */
export async function startRegistry(options: {
  realm: string;
  issuer: string;
  service: string;
  certificatePath: string;
  tls?: { certificate: string; key: string; caFile: string };
  /**
   * A notifications endpoint (issue 11), or `{yaml}`: a whole top-level `notifications:` block
   * as text, such as the one `regauth registry-config` prints, written as it is.
   */
  notifications?: RegistryNotificationEndpoint | { yaml: string };
  /** A port chosen beforehand (when regauth's config must name the registry's URL); default: a free one. */
  port?: number;
  /** The storage of an earlier registry, to restart it on the same images; default: a new one. */
  storageDir?: string;
}): Promise<Registry> {
  const dir = makeTempDir("registry-e2e-");
  const port = options.port ?? (await freePort());
  const configPath = join(dir, "config.yml");
  writeFileSync(
    configPath,
    [
      "version: 0.1",
      "log: {level: info}",
      `storage: {filesystem: {rootdirectory: ${options.storageDir ?? join(dir, "storage")}}, delete: {enabled: true}}`,
      options.tls
        ? `http: {addr: "127.0.0.1:${port}", tls: {certificate: ${options.tls.certificate}, key: ${options.tls.key}}}`
        : `http: {addr: "127.0.0.1:${port}"}`,
      "auth:",
      "  token:",
      `    realm: ${options.realm}`,
      `    service: ${JSON.stringify(options.service)}`,
      `    issuer: ${JSON.stringify(options.issuer)}`,
      `    rootcertbundle: ${options.certificatePath}`,
      // JSON is YAML: the endpoint as given, with the secret as its Authorization header.
      ...(options.notifications
        ? [
            "yaml" in options.notifications
              ? options.notifications.yaml
              : `notifications: ${JSON.stringify({ endpoints: [notificationEndpoint(options.notifications)] })}`,
          ]
        : []),
      "",
    ].join("\n"),
  );
  const proc = Bun.spawn(["docker-registry", "serve", configPath], {
    stdout: "pipe",
    stderr: "pipe",
    stdin: "ignore",
  });
  killWhenScopeEnds(proc);
  const log = new Output(proc.stderr);
  const url = `${options.tls ? "https" : "http"}://127.0.0.1:${port}`;
  await waitForHttp(`${url}/v2/`, 10_000, options.tls?.caFile);
  return { host: `127.0.0.1:${port}`, url, proc, log };
}

/** distribution's `notifications.endpoints[]` entry (protocol_and_peers.md §C.1). */
export interface RegistryNotificationEndpoint {
  url: string;
  /** Sent as `Authorization: Bearer <secret>`, unless headers has its own Authorization. */
  secret?: string;
  name?: string;
  headers?: Record<string, string[]>;
  timeout?: string;
  threshold?: number;
  backoff?: string;
  ignoredmediatypes?: string[];
  ignore?: { mediatypes?: string[]; actions?: string[] };
}

function notificationEndpoint(endpoint: RegistryNotificationEndpoint): Record<string, unknown> {
  const { secret, ...rest } = endpoint;
  return {
    name: "regauth",
    ...rest,
    headers: {
      ...(secret !== undefined ? { Authorization: [`Bearer ${secret}`] } : {}),
      ...endpoint.headers,
    },
  };
}

/** A minimal one-layer OCI image layout on disk, for `skopeo copy oci:DIR:latest ...`. */
export function makeOciImage(content = "hello from regauth\n"): string {
  const dir = makeTempDir("oci-");
  mkdirSync(join(dir, "blobs/sha256"), { recursive: true });
  const put = (bytes: Uint8Array) => {
    const hex = createHash("sha256").update(bytes).digest("hex");
    writeFileSync(join(dir, "blobs/sha256", hex), bytes);
    return { digest: `sha256:${hex}`, size: bytes.length };
  };
  const tar = tarOneFile("hello.txt", Buffer.from(content));
  const layer = put(gzipSync(tar));
  const diffId = `sha256:${createHash("sha256").update(tar).digest("hex")}`;
  const config = put(
    Buffer.from(
      JSON.stringify({
        architecture: "amd64",
        os: "linux",
        rootfs: { type: "layers", diff_ids: [diffId] },
        config: {},
      }),
    ),
  );
  const manifest = put(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
        layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", ...layer }],
      }),
    ),
  );
  writeFileSync(join(dir, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(
    join(dir, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          ...manifest,
          annotations: { "org.opencontainers.image.ref.name": "latest" },
        },
      ],
    }),
  );
  return dir;
}

function tarOneFile(name: string, data: Buffer): Buffer {
  const header = Buffer.alloc(512);
  header.write(name, 0);
  header.write("0000644\0", 100);
  header.write("0000000\0", 108);
  header.write("0000000\0", 116);
  header.write(`${data.length.toString(8).padStart(11, "0")}\0`, 124);
  header.write("00000000000\0", 136);
  header.write("        ", 148);
  header.write("0", 156);
  header.write("ustar\0", 257);
  header.write("00", 263);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
  const padding = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([header, data, padding, Buffer.alloc(1024)]);
}

export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export async function run(
  argv: string[],
  options: { env?: Record<string, string>; stdin?: string; timeoutMs?: number; cwd?: string } = {},
): Promise<CommandResult> {
  const proc = Bun.spawn(argv, {
    ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
    stdin: options.stdin === undefined ? "ignore" : new Blob([options.stdin]),
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, ...options.env },
    timeout: options.timeoutMs ?? 60_000,
  });
  const [stdout, stderr, exitCode] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { exitCode, stdout, stderr };
}

export interface SkopeoOptions {
  /**
   * A directory with the test CA as `ca.crt`: TLS is then verified, for the registry and for the
   * token realm alike (containers/image uses one HTTP client for both). Without it, TLS
   * verification is off, which plain-HTTP registries on loopback need.
   */
  certDir?: string;
}

/** `skopeo copy` from an OCI layout to the registry (push); creds "user:password" or none. */
export function skopeoPush(
  ociDir: string,
  reference: string,
  creds?: string,
  options: SkopeoOptions = {},
): Promise<CommandResult> {
  return run([
    "skopeo",
    "copy",
    ...(options.certDir
      ? ["--dest-tls-verify=true", "--dest-cert-dir", options.certDir]
      : ["--dest-tls-verify=false"]),
    ...(creds ? ["--dest-creds", creds] : ["--dest-no-creds"]),
    `oci:${ociDir}:latest`,
    `docker://${reference}`,
  ]);
}

/** `skopeo copy` from the registry into a fresh OCI layout (pull). */
export function skopeoPull(
  reference: string,
  creds?: string,
  options: SkopeoOptions = {},
): Promise<CommandResult> {
  const target = makeTempDir("pull-");
  return run([
    "skopeo",
    "copy",
    ...(options.certDir
      ? ["--src-tls-verify=true", "--src-cert-dir", options.certDir]
      : ["--src-tls-verify=false"]),
    ...(creds ? ["--src-creds", creds] : ["--src-no-creds"]),
    `docker://${reference}`,
    `oci:${target}:latest`,
  ]);
}

/**
 * `docker login` with a throwaway config dir. With no daemon running the CLI logs in
 * client-side (docker/cli loginClientSide), which exercises the same token request.
 *
 * The credentials stay in config.json even on a machine with an OS credential store (e.g.
 * Debian's docker-credential-pass, which fails with "pass not initialized"): docker/cli picks the
 * platform's helper only when the file has no auth at all (config.go LoadDefaultConfigFile:
 * `if !configFile.ContainsAuth() { DetectDefaultStore }`), and ContainsAuth is true as soon as
 * `auths` has an entry (configfile/file.go). `credsStore: ""` cannot say "use the file": empty
 * means "not set". So the config starts with an empty entry for the registry being logged in to.
 */
export async function dockerLogin(
  registryHost: string,
  username: string,
  password: string,
  options: { env?: Record<string, string> } = {},
): Promise<CommandResult & { configDir: string }> {
  const configDir = makeTempDir("docker-config-");
  writeFileSync(join(configDir, "config.json"), JSON.stringify({ auths: { [registryHost]: {} } }), {
    mode: 0o600,
  });
  const result = await run(
    ["docker", "--config", configDir, "login", "--username", username, "--password-stdin", registryHost],
    {
      stdin: password,
      env: { ...options.env, DOCKER_HOST: `unix://${join(configDir, "no-daemon.sock")}` },
    },
  );
  // configDir/config.json is what the CLI stored (auth, or identitytoken for a refresh token).
  return { ...result, configDir };
}

export interface TokenResponse {
  status: number;
  headers: Headers;
  text: string;
  token?: string;
}

/** GET realm?service&scope… with Basic credentials "user:password" (none = anonymous). */
export async function fetchToken(
  realm: string,
  params: { service: string; scopes?: string[]; account?: string },
  creds?: string,
): Promise<TokenResponse> {
  const query = new URLSearchParams({ service: params.service });
  for (const scope of params.scopes ?? []) query.append("scope", scope);
  if (params.account !== undefined) query.set("account", params.account);
  const headers: Record<string, string> = creds
    ? { authorization: `Basic ${Buffer.from(creds).toString("base64")}` }
    : {};
  const res = await fetch(`${realm}?${query}`, { headers });
  const text = await res.text();
  const token = res.ok ? (JSON.parse(text) as { token: string }).token : undefined;
  return { status: res.status, headers: res.headers, text, ...(token ? { token } : {}) };
}

/** The JOSE header and claims of a token, decoded without verification (the registry verifies). */
export function decodeToken(token: string): {
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
} {
  const [header = "", claims = ""] = token.split(".");
  return {
    header: JSON.parse(Buffer.from(header, "base64url").toString()),
    claims: JSON.parse(Buffer.from(claims, "base64url").toString()),
  };
}

/** Runs openssl and throws with its output when it fails. */
export async function openssl(args: string[], cwd?: string): Promise<void> {
  const proc = Bun.spawn(["openssl", ...args], { cwd, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const [stderr, exitCode] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
  if (exitCode !== 0) throw new Error(`openssl ${args.join(" ")} failed (${exitCode}):\n${stderr}`);
}

/** openssl genpkey/genrsa arguments for the key kinds the tests use. */
const KEY_COMMANDS = {
  /** PKCS#1 ("BEGIN RSA PRIVATE KEY"), the format docker_auth's README generates. */
  "rsa-pkcs1": (out: string) => ["genrsa", "-traditional", "-out", out, "2048"],
  /** SEC1 ("BEGIN EC PRIVATE KEY"), what `openssl ecparam -genkey` writes. */
  "ec-p256-sec1": (out: string) => ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", out],
  "ec-p384-sec1": (out: string) => ["ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", out],
} as const;
export type TestKeyKind = keyof typeof KEY_COMMANDS;

/** A private key and a self-signed certificate for it, made by openssl in `dir`. */
export async function makeSelfSignedKeyPair(
  dir: string,
  name: string,
  kind: TestKeyKind,
): Promise<{ key: string; certificate: string }> {
  const key = join(dir, `${name}.key`);
  const certificate = join(dir, `${name}.crt`);
  await openssl(KEY_COMMANDS[kind](key));
  await openssl([
    "req",
    "-x509",
    "-new",
    "-key",
    key,
    "-subj",
    `/CN=${name}`,
    "-days",
    "30",
    "-out",
    certificate,
  ]);
  Bun.spawnSync(["chmod", "600", key]);
  return { key, certificate };
}

export interface TestCa {
  dir: string;
  certificate: string;
  key: string;
  /** A directory holding only `ca.crt`, for skopeo's --dest-cert-dir / --src-cert-dir. */
  certDir: string;
}

/** A throwaway certificate authority for TLS tests. */
export async function makeTestCa(): Promise<TestCa> {
  const dir = makeTempDir("test-ca-");
  const { key, certificate } = await makeSelfSignedKeyPair(dir, "ca", "ec-p256-sec1");
  const certDir = join(dir, "certs.d");
  mkdirSync(certDir);
  writeFileSync(join(certDir, "ca.crt"), await Bun.file(certificate).text());
  return { dir, certificate, key, certDir };
}

/** A server certificate for 127.0.0.1 and localhost, signed by `ca`. */
export async function issueServerCertificate(
  ca: TestCa,
  name: string,
  kind: TestKeyKind = "ec-p256-sec1",
): Promise<{ key: string; certificate: string }> {
  const key = join(ca.dir, `${name}.key`);
  const request = join(ca.dir, `${name}.csr`);
  const certificate = join(ca.dir, `${name}.crt`);
  const extensions = join(ca.dir, `${name}.ext`);
  writeFileSync(
    extensions,
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
  );
  await openssl(KEY_COMMANDS[kind](key));
  Bun.spawnSync(["chmod", "600", key]);
  await openssl(["req", "-new", "-key", key, "-subj", `/CN=${name}`, "-out", request]);
  await openssl([
    "x509",
    "-req",
    "-in",
    request,
    "-CA",
    ca.certificate,
    "-CAkey",
    ca.key,
    "-CAcreateserial",
    "-days",
    "30",
    "-extfile",
    extensions,
    "-out",
    certificate,
  ]);
  return { key, certificate };
}
