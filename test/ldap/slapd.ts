/**
 * A real OpenLDAP server (Debian's /usr/sbin/slapd) for the LDAP tests: its own config (slapd.conf
 * via `-f`), an mdb database in a temporary directory, free loopback ports for ldap:// and
 * ldaps://, StartTLS on the plain port, and a CA plus server certificate generated with openssl.
 * slapd runs in the foreground with the `stats` log level so tests can count connections and
 * binds. It never touches a system slapd (own ports, own pid file, own directory).
 */
import { afterAll } from "bun:test";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Client } from "ldapts";
import { freePort } from "../e2e/harness.ts";
import { makeTempDir } from "../helpers.ts";

export const SLAPD_BINARY = ["/usr/sbin/slapd", "/usr/local/sbin/slapd"].find((path) => existsSync(path));
export const BASE_DN = "dc=example,dc=org";
export const ROOT_DN = `cn=admin,${BASE_DN}`;
export const ROOT_PASSWORD = "root-secret";
export const SERVICE_DN = `cn=reader,${BASE_DN}`;
export const SERVICE_PASSWORD = "reader-secret";

/** Fails with a message that says what to install, instead of an obscure spawn error. */
export function requireSlapd(): string {
  if (!SLAPD_BINARY)
    throw new Error(
      "slapd is not installed: the LDAP tests need Debian's slapd (apt-get install slapd ldap-utils, " +
        "or run scripts/test.sh as root, which calls scripts/lib/ensure-tools.sh)",
    );
  return SLAPD_BINARY;
}

export interface TestPki {
  dir: string;
  caPath: string;
  certPath: string;
  keyPath: string;
}

function openssl(args: string[], cwd: string): void {
  const result = Bun.spawnSync(["openssl", ...args], { cwd, stdout: "pipe", stderr: "pipe" });
  if (result.exitCode !== 0) throw new Error(`openssl ${args[0]} failed: ${result.stderr.toString()}`);
}

/**
 * A throwaway CA and a server certificate for `localhost` and 127.0.0.1 only, so connecting by
 * any other name (e.g. 127.0.0.2's "wrong name" or `ip6-localhost`) must fail verification.
 */
export function makeTestPki(subjectAltName = "DNS:localhost,IP:127.0.0.1"): TestPki {
  const dir = makeTempDir("regauth-ldap-pki-");
  openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key"], dir);
  openssl(
    [
      ...["req", "-x509", "-new", "-key", "ca.key", "-sha256", "-days", "2", "-subj", "/CN=regauth test CA"],
      ...["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
      ...["-out", "ca.pem"],
    ],
    dir,
  );
  openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "server.key"], dir);
  openssl(["req", "-new", "-key", "server.key", "-subj", "/CN=ldap test server", "-out", "server.csr"], dir);
  writeFileSync(
    join(dir, "server.ext"),
    `subjectAltName=${subjectAltName}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n`,
  );
  openssl(
    [
      ...["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial"],
      ...["-days", "2", "-sha256", "-extfile", "server.ext", "-out", "server.pem"],
    ],
    dir,
  );
  return {
    dir,
    caPath: join(dir, "ca.pem"),
    certPath: join(dir, "server.pem"),
    keyPath: join(dir, "server.key"),
  };
}

export interface Slapd {
  /** ldap:// port (plain, and StartTLS). */
  port: number;
  /** ldaps:// port. */
  tlsPort: number;
  dir: string;
  pki: TestPki;
  /** Everything slapd logged at `stats` level since it was first started. */
  log(): string;
  /** Number of TCP connections slapd accepted since `mark` (a log() length). */
  acceptedSince(mark: number): number;
  /** BIND operations slapd saw since `mark`, as `dn=...` strings. */
  bindsSince(mark: number): string[];
  stop(): Promise<void>;
  /** Starts again on the same ports and database (for outage/recovery tests). */
  start(): Promise<void>;
  /** Adds entries as the root DN. */
  add(entries: LdapEntry[]): Promise<void>;
}

export interface LdapEntry {
  dn: string;
  attributes: Record<string, string | string[]>;
}

const running = new Set<Bun.Subprocess>();
/** Kills every slapd still running. Call `afterAll(stopAllSlapds)` in each file (see harness.ts stopAllPeers). */
export async function stopAllSlapds(): Promise<void> {
  for (const proc of running) proc.kill("SIGKILL");
  await Promise.all([...running].map((p) => p.exited));
  running.clear();
}
afterAll(stopAllSlapds);

function slapdConf(dir: string, pki: TestPki, globalDirectives: string): string {
  return `include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile ${join(dir, "slapd.pid")}
argsfile ${join(dir, "slapd.args")}
TLSCACertificateFile ${pki.caPath}
TLSCertificateFile ${pki.certPath}
TLSCertificateKeyFile ${pki.keyPath}
${globalDirectives}
database mdb
maxsize 33554432
suffix "${BASE_DN}"
rootdn "${ROOT_DN}"
rootpw ${ROOT_PASSWORD}
directory ${join(dir, "db")}
# Like a real directory: anonymous clients may only authenticate, bound users may read.
access to attrs=userPassword by anonymous auth by * none
access to * by users read by * none
overlay memberof
`;
}

/** Starts slapd with the base entries (organisation, ou=people, ou=groups, the service account). */
export async function startSlapd(
  options: { pki?: TestPki /** e.g. "idletimeout 1" */; globalDirectives?: string } = {},
): Promise<Slapd> {
  const binary = requireSlapd();
  const dir = makeTempDir("regauth-slapd-");
  const pki = options.pki ?? makeTestPki();
  mkdirSync(join(dir, "db"));
  const confPath = join(dir, "slapd.conf");
  writeFileSync(confPath, slapdConf(dir, pki, options.globalDirectives ?? ""));
  const port = await freePort();
  const tlsPort = await freePort();
  let logText = "";
  let proc: Bun.Subprocess<"ignore", "ignore", "pipe"> | null = null;

  const start = async () => {
    // -d 256 (stats): foreground, connection/operation log on stderr. -h: loopback only.
    proc = Bun.spawn(
      [binary, "-f", confPath, "-h", `ldap://127.0.0.1:${port}/ ldaps://127.0.0.1:${tlsPort}/`, "-d", "256"],
      { stdin: "ignore", stdout: "ignore", stderr: "pipe" },
    );
    running.add(proc);
    const own = proc;
    void (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of own.stderr) logText += decoder.decode(chunk, { stream: true });
    })();
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (own.exitCode !== null) throw new Error(`slapd exited with ${own.exitCode}:\n${logText}`);
      if (await canConnect(port)) return;
      if (Date.now() > deadline) throw new Error(`slapd did not listen within 10 s:\n${logText}`);
      await Bun.sleep(25);
    }
  };

  const slapd: Slapd = {
    port,
    tlsPort,
    dir,
    pki,
    log: () => logText,
    acceptedSince: (mark) => (logText.slice(mark).match(/ ACCEPT from /g) ?? []).length,
    bindsSince: (mark) => [...logText.slice(mark).matchAll(/ BIND (dn="[^"]*")/g)].map((m) => m[1] as string),
    async stop() {
      const current = proc;
      if (!current) return;
      proc = null;
      current.kill("SIGTERM");
      await current.exited;
      running.delete(current);
    },
    start,
    async add(entries) {
      const client = new Client({ url: `ldap://127.0.0.1:${port}`, timeout: 5000, connectTimeout: 5000 });
      try {
        await client.bind(ROOT_DN, ROOT_PASSWORD);
        for (const entry of entries) await client.add(entry.dn, entry.attributes);
      } finally {
        await client.unbind();
      }
    },
  };
  await start();
  await slapd.add([
    { dn: BASE_DN, attributes: { objectClass: ["dcObject", "organization"], dc: "example", o: "Example" } },
    { dn: `ou=people,${BASE_DN}`, attributes: { objectClass: "organizationalUnit", ou: "people" } },
    { dn: `ou=groups,${BASE_DN}`, attributes: { objectClass: "organizationalUnit", ou: "groups" } },
    {
      dn: SERVICE_DN,
      attributes: {
        objectClass: ["organizationalRole", "simpleSecurityObject"],
        cn: "reader",
        userPassword: SERVICE_PASSWORD,
      },
    },
  ]);
  return slapd;
}

async function canConnect(port: number): Promise<boolean> {
  try {
    const socket = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } });
    socket.end();
    return true;
  } catch {
    return false;
  }
}

/** A person entry under ou=people (or another OU) with a uid and a password. */
export function person(
  uid: string | string[],
  password: string,
  ou = "people",
  extra: Record<string, string | string[]> = {},
): LdapEntry {
  const rdn = (Array.isArray(uid) ? uid[0] : uid) as string;
  return {
    dn: `uid=${rdn.replace(/[,+"\\<>;=]/g, "\\$&")},ou=${ou},${BASE_DN}`, // RFC 4514 specials, written by hand
    attributes: {
      objectClass: "inetOrgPerson",
      uid,
      cn: rdn,
      sn: rdn,
      userPassword: password,
      ...extra,
    },
  };
}

/** A groupOfNames; the memberof overlay then sets memberOf on each member. */
export function group(cn: string, memberDns: string[]): LdapEntry {
  return {
    dn: `cn=${cn},ou=groups,${BASE_DN}`,
    attributes: { objectClass: "groupOfNames", cn, member: memberDns },
  };
}
