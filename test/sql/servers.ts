/**
 * Real database servers for the SQL back-end tests (issue 13): Debian's PostgreSQL (`initdb` +
 * `postgres` from /usr/lib/postgresql/N/bin) and MariaDB (`mariadb-install-db` + `mariadbd`), each
 * in a temporary data directory on a free loopback port with its socket in that directory. They
 * never touch a system instance (scripts/lib/ensure-tools.sh stops the ones Debian starts on
 * install). `stop()` and `start()` keep port and data, for outage and recovery tests.
 *
 * PostgreSQL refuses to run as root, so when the tests run as root (CI) the server runs as the
 * `postgres` user the package created, in a directory it owns.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { chmodSync, chownSync, copyFileSync, existsSync, readdirSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { join } from "node:path";
import { SQL } from "bun";
import { freePort } from "../e2e/free-port.ts";
import { makeTempDir } from "../helpers.ts";

export const DB_USER = "regauth";
export const DB_PASSWORD = "db-secret'\"@/:;";
export const DB_NAME = "registry_users";

export interface TestDatabaseServer {
  engine: "postgres" | "mysql";
  port: number;
  /** docker_auth's conn_string for this server (lib/pq URL, or Go MySQL DSN). */
  connString: string;
  /** Runs statements as the administrator (setup, inserting rows). */
  admin: SQL;
  log(): string;
  stop(): Promise<void>;
  start(): Promise<void>;
}

const running = new Set<ChildProcess>();
/**
 * Kills every server still running. Each test file calls `afterAll(stopAllDatabaseServers)`: a
 * module-level afterAll would belong to the first file only (see harness.ts), and the benchmark
 * (scripts/bench.ts) uses this module outside bun:test.
 */
export async function stopAllDatabaseServers(): Promise<void> {
  for (const proc of running) proc.kill("SIGKILL");
  running.clear();
}

function postgresBinDir(): string {
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  const found = versions.map((v) => join(root, v, "bin")).find((dir) => existsSync(join(dir, "initdb")));
  if (!found)
    throw new Error(
      "PostgreSQL is not installed: the SQL tests need Debian's postgresql package (run scripts/test.sh as root, which calls scripts/lib/ensure-tools.sh)",
    );
  return found;
}

/** uid/gid to run PostgreSQL as: ourselves, or the `postgres` user when we are root. */
function postgresIdentity(): { uid: number; gid: number } | undefined {
  if (userInfo().uid !== 0) return undefined;
  const id = (flag: string) => Number(spawnSync("id", [flag, "postgres"]).stdout.toString().trim());
  return { uid: id("-u"), gid: id("-g") };
}

function startProcess(command: string, args: string[], identity?: { uid: number; gid: number }) {
  const proc = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], ...(identity ?? {}) });
  running.add(proc);
  let text = "";
  proc.stdout?.on("data", (chunk) => (text += chunk));
  proc.stderr?.on("data", (chunk) => (text += chunk));
  const exited = new Promise<void>((resolve) => proc.on("exit", () => resolve()));
  return { proc, output: () => text, exited };
}

async function waitUntil(
  ready: () => Promise<boolean>,
  what: string,
  output: () => string,
  exited: () => boolean,
) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited()) throw new Error(`${what} exited:\n${output()}`);
    if (await ready()) return;
    if (Date.now() > deadline) throw new Error(`${what} did not start within 30 s:\n${output()}`);
    await Bun.sleep(50);
  }
}

async function answers(sql: SQL): Promise<boolean> {
  try {
    await sql`SELECT 1`;
    return true;
  } catch {
    return false;
  }
}

/** A server certificate and key (PEM) for TLS; the server then accepts TLS and plain connections. */
export interface ServerTls {
  certPath: string;
  keyPath: string;
}

export async function startPostgres(options: { tls?: ServerTls } = {}): Promise<TestDatabaseServer> {
  const bin = postgresBinDir();
  const identity = postgresIdentity();
  const dir = makeTempDir("regauth-pg-");
  if (identity) chownSync(dir, identity.uid, identity.gid);
  const data = join(dir, "data");
  const passwordFile = join(dir, "pw");
  writeFileSync(passwordFile, `${DB_PASSWORD}\n`);
  if (identity) chownSync(passwordFile, identity.uid, identity.gid);
  const init = spawnSync(
    join(bin, "initdb"),
    ["-D", data, "-U", DB_USER, `--pwfile=${passwordFile}`, "-A", "scram-sha-256", "--no-sync", "-E", "UTF8"],
    { ...(identity ?? {}), stdio: "pipe" },
  );
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr.toString()}`);
  const tlsArgs: string[] = [];
  if (options.tls) {
    // PostgreSQL refuses a key file others can read, or one it does not own.
    const cert = join(dir, "server.pem");
    const key = join(dir, "server.key");
    copyFileSync(options.tls.certPath, cert);
    copyFileSync(options.tls.keyPath, key);
    chmodSync(key, 0o600);
    if (identity) for (const file of [cert, key]) chownSync(file, identity.uid, identity.gid);
    tlsArgs.push("-c", "ssl=on", "-c", `ssl_cert_file=${cert}`, "-c", `ssl_key_file=${key}`);
  }
  const port = await freePort();
  let current: ReturnType<typeof startProcess> | null = null;
  let logText = "";
  let stopped = false;
  const url = `postgres://127.0.0.1:${port}/postgres`;
  const adminOptions = { url, username: DB_USER, password: DB_PASSWORD, max: 2, connectionTimeout: 5 };
  let admin = new SQL(adminOptions);

  const start = async () => {
    const started = startProcess(
      join(bin, "postgres"),
      [
        ...["-D", data, "-p", String(port), "-k", dir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
        ...["-c", "log_connections=on", ...tlsArgs],
      ],
      identity,
    );
    current = started;
    stopped = false;
    let exited = false;
    void started.exited.then(() => (exited = true));
    const probe = new SQL({ ...adminOptions, max: 1 });
    try {
      await waitUntil(
        () => answers(probe),
        "postgres",
        () => logText + started.output(),
        () => exited,
      );
    } finally {
      await probe.close({ timeout: 0 });
    }
  };
  await start();
  await admin.unsafe(`CREATE DATABASE ${DB_NAME}`);
  await admin.close();
  adminOptions.url = `postgres://127.0.0.1:${port}/${DB_NAME}`;
  admin = new SQL(adminOptions);
  return {
    engine: "postgres",
    port,
    connString: `postgres://${DB_USER}:${encodeURIComponent(DB_PASSWORD)}@127.0.0.1:${port}/${DB_NAME}?sslmode=disable`,
    admin,
    log: () => logText + (current?.output() ?? ""),
    async stop() {
      if (!current || stopped) return;
      stopped = true;
      const proc = current;
      logText += proc.output();
      proc.proc.kill("SIGINT"); // fast shutdown: disconnects clients, as a restart does
      await proc.exited;
      running.delete(proc.proc);
      current = null;
    },
    start,
  };
}

export async function startMariadb(options: { tls?: ServerTls } = {}): Promise<TestDatabaseServer> {
  for (const tool of ["/usr/bin/mariadb-install-db", "/usr/sbin/mariadbd"])
    if (!existsSync(tool))
      throw new Error(
        `${tool} is missing: the SQL tests need Debian's mariadb-server package (run scripts/test.sh as root, which calls scripts/lib/ensure-tools.sh)`,
      );
  const dir = makeTempDir("regauth-mariadb-");
  const data = join(dir, "data");
  const socket = join(dir, "mysqld.sock");
  const asRoot = userInfo().uid === 0 ? ["--user=root"] : [];
  const init = spawnSync(
    "/usr/bin/mariadb-install-db",
    [
      "--no-defaults",
      `--datadir=${data}`,
      "--auth-root-authentication-method=normal",
      "--skip-test-db",
      ...asRoot,
    ],
    { stdio: "pipe" },
  );
  if (init.status !== 0) throw new Error(`mariadb-install-db failed: ${init.stderr.toString()}`);
  const port = await freePort();
  let current: ReturnType<typeof startProcess> | null = null;
  let logText = "";
  const rootOptions = {
    adapter: "mariadb" as const,
    hostname: "127.0.0.1",
    port,
    username: "root",
    password: "",
  };

  const start = async () => {
    const started = startProcess("/usr/sbin/mariadbd", [
      "--no-defaults",
      `--datadir=${data}`,
      `--socket=${socket}`,
      `--port=${port}`,
      "--bind-address=127.0.0.1",
      `--pid-file=${join(dir, "mysqld.pid")}`,
      "--skip-log-bin",
      "--innodb-buffer-pool-size=16M",
      "--innodb-log-file-size=8M",
      "--skip-name-resolve",
      ...(options.tls ? [`--ssl-cert=${options.tls.certPath}`, `--ssl-key=${options.tls.keyPath}`] : []),
      ...asRoot,
    ]);
    current = started;
    let exited = false;
    void started.exited.then(() => (exited = true));
    const probe = new SQL({ ...rootOptions, max: 1, connectionTimeout: 5 });
    try {
      await waitUntil(
        () => answers(probe),
        "mariadbd",
        () => logText + started.output(),
        () => exited,
      );
    } finally {
      await probe.close({ timeout: 0 });
    }
  };
  await start();
  const root = new SQL({ ...rootOptions, max: 1 });
  await root.unsafe(`CREATE DATABASE ${DB_NAME} CHARACTER SET utf8mb4`);
  // DDL takes no parameters; the constant test password has no backslash, so doubling ' quotes it.
  await root.unsafe(
    `CREATE USER '${DB_USER}'@'127.0.0.1' IDENTIFIED BY '${DB_PASSWORD.replaceAll("'", "''")}'`,
  );
  await root.unsafe(`GRANT ALL ON ${DB_NAME}.* TO '${DB_USER}'@'127.0.0.1'`);
  await root.close();
  const admin = new SQL({ ...rootOptions, database: DB_NAME, max: 2, connectionTimeout: 5 });
  return {
    engine: "mysql",
    port,
    // Go's MySQL DSN, as docker_auth users write it. The password goes in as it is (the driver
    // splits at the last "@" before the "/").
    connString: `${DB_USER}:${DB_PASSWORD}@tcp(127.0.0.1:${port})/${DB_NAME}?charset=utf8mb4&parseTime=true`,
    admin,
    log: () => logText + (current?.output() ?? ""),
    async stop() {
      if (!current) return;
      const proc = current;
      current = null;
      logText += proc.output();
      proc.proc.kill("SIGTERM");
      await proc.exited;
      running.delete(proc.proc);
    },
    start,
  };
}
