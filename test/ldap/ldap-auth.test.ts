/**
 * ldap_auth against a real slapd (test/ldap/slapd.ts): plain LDAP, LDAPS and StartTLS with a CA the
 * test generates, hostile user names, ambiguous entries, an outage and recovery, and 200 logins at
 * once on a bounded pool. Requests go through the real HTTP app in process (`app.handle`).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { log } from "../../src/log.ts";
import type { LdapAuthenticator } from "../../src/ldap/ldap-authenticator.ts";
import { basic, hashPassword, makeTempDir, req, testApp, verifyToken } from "../helpers.ts";
import {
  BASE_DN,
  group,
  makeTestPki,
  person,
  SERVICE_DN,
  SERVICE_PASSWORD,
  type Slapd,
  startSlapd,
  stopAllSlapds,
} from "./slapd.ts";

afterAll(stopAllSlapds);

const ALICE = person("alice", "alice-pw");
const BOB = person("bob", "bob-pw");
const ADMIN = person("admin", "admin-pw");
const EVE = person("eve", "eve-pw"); // also a config user, with another password
const JANE = person("jane", "jane-pw", "people", { mail: "jane@example.org" });
const COMMA = person("a,b", "comma-pw"); // uid with a comma: its DN is uid=a\,b,ou=people,...
const TWIN_PEOPLE = person("twin", "twin-pw");
const TWIN_CONTRACTORS = person("twin", "twin-pw", "contractors");
// Two uid values (an alias) and a mail address, for the account-name tests.
const ROBERT = person(["robert", "bob.r"], "robert-pw", "people", { mail: "Robert@Example.org" });
const FILTER = "(&(uid=${account})(objectClass=inetOrgPerson))";

let slapd: Slapd;
let dir: string;
let passwordFile: string;

beforeAll(async () => {
  slapd = await startSlapd();
  dir = makeTempDir("regauth-ldap-test-");
  passwordFile = join(dir, "bind-password");
  writeFileSync(passwordFile, `${SERVICE_PASSWORD}\n`); // trailing newline: trimmed, as docker_auth does
  await slapd.add([
    { dn: `ou=contractors,${BASE_DN}`, attributes: { objectClass: "organizationalUnit", ou: "contractors" } },
    ALICE,
    BOB,
    ADMIN,
    JANE,
    EVE,
    COMMA,
    TWIN_PEOPLE,
    TWIN_CONTRACTORS,
    ROBERT,
    group("Developers", [ALICE.dn, COMMA.dn]),
    group("ops", [ALICE.dn]),
  ]);
});
afterAll(async () => {
  await slapd?.stop();
});

interface LdapOverrides {
  [key: string]: unknown;
}

function ldapSection(overrides: LdapOverrides = {}): Record<string, unknown> {
  return {
    addr: `127.0.0.1:${slapd.port}`,
    bind_dn: SERVICE_DN,
    bind_password_file: passwordFile,
    base: BASE_DN,
    filter: FILTER,
    labels: { group: { attribute: "memberOf", parse_cn: true, lower_case: true } },
    connect_timeout_seconds: 2,
    timeout_seconds: 5,
    pool_size: 4,
    ...overrides,
  };
}

const ACL = [
  {
    match: { name: "${labels:group}/*" },
    actions: ["*"],
    comment: "members push to their group's namespace",
  },
  { match: { account: "/.+/" }, actions: ["pull"] },
];

async function ldapApp(overrides: LdapOverrides = {}) {
  const made = await testApp({
    users: {
      localuser: { password: hashPassword("local-pw") },
      eve: { password: hashPassword("local-eve") },
    },
    acl: ACL,
    ldap_auth: ldapSection(overrides),
  });
  const authenticator = made.issuer.authenticators.find((a) => a.name === "ldap_auth") as LdapAuthenticator;
  return { ...made, authenticator };
}

type Made = Awaited<ReturnType<typeof ldapApp>>;

async function login(
  made: Made,
  username: string,
  password: string,
  scope = "repository:developers/app:push,pull",
) {
  const response = await made.app.handle(
    req(`/auth?service=registry&scope=${encodeURIComponent(scope)}`, {
      headers: { authorization: basic(username, password) },
    }),
  );
  const body = (await response.json()) as { token?: string };
  if (response.status !== 200 || !body.token) return { status: response.status, sub: null, actions: null };
  const { claims } = await verifyToken(body.token, made.loaded, "registry");
  return { status: response.status, sub: claims.sub, actions: claims.access[0]?.actions ?? [] };
}

/** slapd log lines since `mark` that are operations (BIND/SRCH), for "nothing reached LDAP" checks. */
function operationsSince(mark: number): string[] {
  return slapd
    .log()
    .slice(mark)
    .split("\n")
    .filter((line) => / (BIND|SRCH) /.test(line));
}

async function captureLogs<T>(work: () => Promise<T>): Promise<{ result: T; lines: string[] }> {
  const lines: string[] = [];
  const restore = log.capture(lines);
  try {
    return { result: await work(), lines };
  } finally {
    restore();
  }
}

describe("plain LDAP", () => {
  let made: Made;
  beforeAll(async () => {
    made = await ldapApp();
  });
  afterAll(() => made.authenticator.close());

  test("good password: token for the directory's name, labels from memberOf (parse_cn, lower_case)", async () => {
    expect(await login(made, "alice", "alice-pw")).toEqual({
      status: 200,
      sub: "alice",
      actions: ["pull", "push"],
    });
  });

  test("a user without the group gets only what the ACL gives everyone", async () => {
    expect(await login(made, "bob", "bob-pw")).toEqual({ status: 200, sub: "bob", actions: ["pull"] });
  });

  test("wrong password and unknown user: 401", async () => {
    expect((await login(made, "alice", "wrong")).status).toBe(401);
    expect((await login(made, "alice", "alice-pw ")).status).toBe(401);
    expect((await login(made, "nobody", "whatever")).status).toBe(401);
  });

  test("empty password or name: 401 and no bind or search reaches slapd (RFC 4513 §5.1.2)", async () => {
    await login(made, "alice", "alice-pw"); // the pooled connection is open and bound already
    await Bun.sleep(50);
    const mark = slapd.log().length;
    expect((await login(made, "alice", "")).status).toBe(401);
    expect((await login(made, "", "alice-pw")).status).toBe(401);
    const direct = await made.authenticator.authenticate({ username: "alice", password: "" }, { ip: null });
    expect(direct.kind).toBe("no-match");
    await Bun.sleep(100);
    expect(operationsSince(mark)).toEqual([]);
  });

  test("the name's case and surrounding spaces do not make a second account (token sub is canonical)", async () => {
    expect(await login(made, "ALICE", "alice-pw")).toEqual({
      status: 200,
      sub: "alice",
      actions: ["pull", "push"],
    });
    expect((await login(made, " Alice ", "alice-pw")).sub).toBe("alice");
  });

  test.each([
    ["*"],
    ["*)(uid=*"],
    ["admin)(|(uid=*"],
    ["admin*"],
    ["jane*"],
    ["\\2a"],
    ["adm\u0000in"],
    ["admin\u0000"],
    ["*)(objectClass=*))(|(uid="],
  ])("filter injection %j finds nothing: 401, no user bind attempted", async (payload) => {
    const mark = slapd.log().length;
    for (const password of ["admin-pw", "jane-pw", "x"])
      expect((await login(made, payload, password)).status).toBe(401);
    await Bun.sleep(50);
    const operations = operationsSince(mark);
    expect(operations.some((line) => / SRCH /.test(line))).toBe(true);
    expect(operations.filter((line) => /BIND dn="uid=/i.test(line))).toEqual([]);
  });

  test("the escaped value reaches slapd as a literal (RFC 4515 \\2a, \\28, \\00)", async () => {
    const mark = slapd.log().length;
    await login(made, "*)(uid=*", "x");
    await login(made, "adm\u0000in", "x");
    await Bun.sleep(50);
    const searches = operationsSince(mark).join("\n");
    expect(searches).toContain("(uid=\\2A\\29\\28uid=\\2A)");
    expect(searches).toContain("(uid=adm\\00in)");
  });

  test("a name that matches two entries is denied and logged as a configuration problem", async () => {
    const { result, lines } = await captureLogs(() => login(made, "twin", "twin-pw"));
    expect(result.status).toBe(401);
    expect(lines.join("\n")).toContain("more than one entry");
  });

  test("a different spelling of a config user's name cannot become that account through LDAP", async () => {
    expect(await login(made, "eve", "local-eve")).toEqual({ status: 200, sub: "eve", actions: ["pull"] });
    expect((await login(made, "eve", "eve-pw")).status).toBe(401); // the config user decides
    const { result, lines } = await captureLogs(() => login(made, "EVE", "eve-pw"));
    expect(result.status).toBe(401);
    expect(lines.join("\n")).toContain("belongs to a config or database user");
  });

  test("config users are asked first and are unaffected", async () => {
    expect(await login(made, "localuser", "local-pw")).toEqual({
      status: 200,
      sub: "localuser",
      actions: ["pull"],
    });
  });

  test("LDAP down: LDAP users get 401 with a 503-class error logged, local users still get tokens; recovers without a restart", async () => {
    expect((await login(made, "alice", "alice-pw")).status).toBe(200);
    await slapd.stop();
    try {
      const { result, lines } = await captureLogs(() => login(made, "alice", "alice-pw"));
      expect(result.status).toBe(401);
      const text = lines.join("\n");
      expect(text).toMatch(/level=error msg="LDAP server unavailable; LDAP login refused" status=503/);
      expect(text).not.toContain("alice-pw");
      expect((await login(made, "bob", "bob-pw")).status).toBe(401);
      expect(await login(made, "localuser", "local-pw")).toEqual({
        status: 200,
        sub: "localuser",
        actions: ["pull"],
      });
    } finally {
      await slapd.start();
    }
    const { result, lines } = await captureLogs(() => login(made, "alice", "alice-pw"));
    expect(result).toEqual({ status: 200, sub: "alice", actions: ["pull", "push"] });
    expect(lines.join("\n")).toContain("LDAP server answers again");
    expect((await login(made, "bob", "wrong")).status).toBe(401);
  });

  test("a connection the server closed while idle is replaced and re-bound as the service account", async () => {
    expect((await login(made, "bob", "bob-pw")).status).toBe(200);
    // A restart closes every pooled socket behind the pool's back (like an idle timeout would).
    await slapd.stop();
    await slapd.start();
    const mark = slapd.log().length;
    expect(await login(made, "alice", "alice-pw")).toEqual({
      status: 200,
      sub: "alice",
      actions: ["pull", "push"],
    });
    await Bun.sleep(50);
    const binds = slapd.bindsSince(mark);
    expect(binds[0]).toBe(`dn="${SERVICE_DN}"`);
  });

  test("200 concurrent logins: every result right, at most pool_size connections", async () => {
    await login(made, "alice", "alice-pw");
    await Bun.sleep(50);
    const mark = slapd.log().length;
    const cases = Array.from({ length: 200 }, (_, i) => {
      switch (i % 5) {
        case 0:
          return {
            user: "alice",
            password: "alice-pw",
            expected: { status: 200, sub: "alice", actions: ["pull", "push"] },
          };
        case 1:
          return {
            user: "bob",
            password: "bob-pw",
            expected: { status: 200, sub: "bob", actions: ["pull"] },
          };
        case 2:
          return { user: "alice", password: "bob-pw", expected: { status: 401, sub: null, actions: null } };
        case 3:
          return {
            user: "a,b",
            password: "comma-pw",
            expected: { status: 200, sub: "a,b", actions: ["pull", "push"] },
          };
        default:
          return { user: "nobody", password: "x", expected: { status: 401, sub: null, actions: null } };
      }
    });
    let maxInUse = 0;
    const sampler = setInterval(() => {
      maxInUse = Math.max(maxInUse, made.authenticator.pool.inUse);
    }, 1);
    const results = await Promise.all(cases.map((c) => login(made, c.user, c.password)));
    clearInterval(sampler);
    expect(results).toEqual(cases.map((c) => c.expected));
    expect(maxInUse).toBe(4); // the pool was saturated, and never exceeded
    await Bun.sleep(50);
    expect(slapd.acceptedSince(mark)).toBeLessThanOrEqual(4);
  });
});

describe("account names and labels", () => {
  let made: Made;
  beforeAll(async () => {
    made = await ldapApp({
      filter: "(|(uid=${account})(mail=${account}))",
      account_attribute: "uid",
      labels: {
        group_dn: { attribute: "memberOf" },
        group: { attribute: "memberof", parse_cn: true },
        email: { attribute: "mail", lower_case: true },
        phone: { attribute: "telephoneNumber" },
      },
    });
  });
  afterAll(() => made.authenticator.close());

  const authenticate = async (username: string, password: string) =>
    await made.authenticator.authenticate({ username, password }, { ip: null });

  test("labels: raw DNs, parse_cn keeps the case without lower_case, a missing attribute gives no label", async () => {
    expect(await authenticate("alice", "alice-pw")).toEqual({
      kind: "allow",
      account: "alice",
      labels: {
        group_dn: [`cn=Developers,ou=groups,${BASE_DN}`, `cn=ops,ou=groups,${BASE_DN}`],
        group: ["Developers", "ops"],
      },
    });
  });

  test("with a multi-valued uid the value the user typed is the account, in the directory's case", async () => {
    expect(await authenticate("BOB.R", "robert-pw")).toMatchObject({ kind: "allow", account: "bob.r" });
    expect(await authenticate("Robert", "robert-pw")).toMatchObject({ kind: "allow", account: "robert" });
  });

  test("a login by mail becomes the uid account; with two uids and no match it is ambiguous and denied", async () => {
    expect(await authenticate("JANE@example.org", "jane-pw")).toMatchObject({
      kind: "allow",
      account: "jane",
    });
    const { result, lines } = await captureLogs(() => authenticate("robert@example.org", "robert-pw"));
    expect(result).toEqual({ kind: "deny" });
    expect(lines.join("\n")).toContain("cannot tell the account name");
  });

  test("deny outcomes are values, not errors: wrong password, unknown user", async () => {
    expect(await authenticate("robert", "wrong")).toEqual({ kind: "deny" });
    expect(await authenticate("nobody", "x")).toEqual({ kind: "no-match" });
  });
});

describe("server-side idle timeout (like Active Directory's MaxConnIdleTime)", () => {
  let idle: Slapd;
  beforeAll(async () => {
    idle = await startSlapd({ globalDirectives: "idletimeout 1" });
    await idle.add([person("alice", "alice-pw")]);
  });
  afterAll(async () => {
    await idle.stop();
  });

  test("a connection slapd closed while idle is replaced; the next login works", async () => {
    const made = await ldapApp({ addr: `127.0.0.1:${idle.port}`, labels: {} });
    try {
      expect((await login(made, "alice", "alice-pw")).status).toBe(200);
      await Bun.sleep(2500); // slapd checks idle connections every idletimeout/2 seconds
      expect(idle.log()).toMatch(/closed \(idletimeout\)/);
      expect((await login(made, "alice", "alice-pw")).status).toBe(200);
    } finally {
      made.authenticator.close();
    }
  });
});

describe("TLS", () => {
  test("LDAPS with the test CA: logins work; 636-style tls: always", async () => {
    const made = await ldapApp({
      addr: `127.0.0.1:${slapd.tlsPort}`,
      tls: "always",
      ca_certificate: slapd.pki.caPath,
    });
    try {
      expect(await login(made, "alice", "alice-pw")).toEqual({
        status: 200,
        sub: "alice",
        actions: ["pull", "push"],
      });
      expect((await login(made, "alice", "wrong")).status).toBe(401);
    } finally {
      made.authenticator.close();
    }
  });

  test("ldaps:// URL in addr, host name verified against the certificate's DNS name", async () => {
    const made = await ldapApp({
      addr: `ldaps://localhost:${slapd.tlsPort}`,
      ca_certificate: slapd.pki.caPath,
    });
    try {
      expect((await login(made, "bob", "bob-pw")).status).toBe(200);
    } finally {
      made.authenticator.close();
    }
  });

  test("StartTLS with the test CA: logins work", async () => {
    // Marked before the app is made: its pool may open (and StartTLS) a connection while
    // testApp waits for the failure-latency calibration.
    const mark = slapd.log().length;
    const made = await ldapApp({ tls: "starttls", ca_certificate: slapd.pki.caPath });
    try {
      expect(await login(made, "alice", "alice-pw")).toEqual({
        status: 200,
        sub: "alice",
        actions: ["pull", "push"],
      });
      expect((await login(made, "bob", "nope")).status).toBe(401);
      await Bun.sleep(50);
      expect(slapd.log().slice(mark)).toContain("STARTTLS");
    } finally {
      made.authenticator.close();
    }
  });

  test("StartTLS and LDAPS connections the server closed are replaced at once (no operation timeout)", async () => {
    for (const overrides of [
      { tls: "starttls", ca_certificate: slapd.pki.caPath },
      { addr: `127.0.0.1:${slapd.tlsPort}`, tls: "always", ca_certificate: slapd.pki.caPath },
    ]) {
      const made = await ldapApp({ ...overrides, timeout_seconds: 5 });
      try {
        expect((await login(made, "alice", "alice-pw")).status).toBe(200);
        await slapd.stop();
        await slapd.start();
        const started = performance.now();
        expect((await login(made, "alice", "alice-pw")).status).toBe(200);
        expect(performance.now() - started).toBeLessThan(2000);
      } finally {
        made.authenticator.close();
      }
    }
  });

  test("untrusted CA (system roots only): LDAPS and StartTLS refuse, 401", async () => {
    for (const overrides of [{ addr: `127.0.0.1:${slapd.tlsPort}`, tls: "always" }, { tls: "starttls" }]) {
      const made = await ldapApp(overrides);
      try {
        const mark = slapd.log().length;
        const { result, lines } = await captureLogs(() => login(made, "alice", "alice-pw"));
        expect(result.status).toBe(401);
        expect(lines.join("\n")).toMatch(/status=503.*(certificate|self.signed)/i);
        await Bun.sleep(50);
        expect(slapd.bindsSince(mark)).toEqual([]);
      } finally {
        made.authenticator.close();
      }
    }
  });

  describe("server certificate for the wrong host name", () => {
    let wrong: Slapd;
    beforeAll(async () => {
      // Same CA, but the certificate names only wrong.example: connecting to 127.0.0.1 must fail.
      wrong = await startSlapd({ pki: makeTestPki("DNS:wrong.example") });
      await wrong.add([person("alice", "alice-pw")]);
    });
    afterAll(async () => {
      await wrong.stop();
    });

    test("LDAPS and StartTLS refuse the connection and no bind is ever sent (not even in clear)", async () => {
      for (const overrides of [
        { addr: `127.0.0.1:${wrong.tlsPort}`, tls: "always" },
        { addr: `127.0.0.1:${wrong.port}`, tls: "starttls" },
      ]) {
        const made = await ldapApp({ ...overrides, ca_certificate: wrong.pki.caPath });
        try {
          const mark = wrong.log().length;
          const { result, lines } = await captureLogs(() => login(made, "alice", "alice-pw"));
          expect(result.status).toBe(401);
          expect(lines.join("\n")).toMatch(/status=503.*(altnames|host ?name)/i);
          await Bun.sleep(50);
          expect(wrong.bindsSince(mark)).toEqual([]);
        } finally {
          made.authenticator.close();
        }
      }
    });

    test("insecure_tls_skip_verify: true accepts it (explicit opt-out)", async () => {
      const made = await ldapApp({
        addr: `127.0.0.1:${wrong.port}`,
        tls: "starttls",
        insecure_tls_skip_verify: true,
        labels: {},
      });
      try {
        expect((await login(made, "alice", "alice-pw")).status).toBe(200);
      } finally {
        made.authenticator.close();
      }
    });
  });
});

describe("initial_bind_as_user (DN template, RFC 4514 escaping)", () => {
  let made: Made;
  beforeAll(async () => {
    made = await ldapApp({
      bind_dn: `uid=\${account},ou=people,${BASE_DN}`,
      bind_password_file: undefined,
      initial_bind_as_user: true,
    });
  });
  afterAll(() => made.authenticator.close());

  test("surrounding spaces reach the same entry (uid is caseIgnoreMatch) and the token names it canonically", async () => {
    // The escaped DN uid=\ Alice\ ,ou=people,... is alice's entry under RFC 4518 space handling.
    expect(await login(made, " Alice ", "alice-pw")).toEqual({
      status: 200,
      sub: "alice",
      actions: ["pull", "push"],
    });
  });

  test("users bind as themselves; a name with a comma is escaped into the DN", async () => {
    expect(await login(made, "alice", "alice-pw")).toEqual({
      status: 200,
      sub: "alice",
      actions: ["pull", "push"],
    });
    expect(await login(made, "a,b", "comma-pw")).toEqual({
      status: 200,
      sub: "a,b",
      actions: ["pull", "push"],
    });
    expect((await login(made, "alice", "bob-pw")).status).toBe(401);
    expect((await login(made, "nobody", "x")).status).toBe(401);
  });

  test.each([["alice,ou=people"], ["alice+cn=x"], ['"alice"'], ["#alice"], ["alice\u0000"], ["*"]])(
    "DN payload %j cannot reach another entry: 401",
    async (payload) => {
      expect((await login(made, payload, "alice-pw")).status).toBe(401);
    },
  );
});

describe("faults", () => {
  test("wrong service account password: 401, an error naming bind_dn, no user bind attempted", async () => {
    const badFile = join(dir, "bad-password");
    writeFileSync(badFile, "not-the-password");
    const made = await ldapApp({ bind_password_file: badFile });
    try {
      const mark = slapd.log().length;
      const { result, lines } = await captureLogs(() => login(made, "alice", "alice-pw"));
      expect(result.status).toBe(401);
      expect(lines.join("\n")).toContain("refused bind_dn's password");
      expect(lines.join("\n")).not.toContain("not-the-password");
      await Bun.sleep(50);
      expect(slapd.bindsSince(mark).filter((dn) => dn.includes("uid=alice"))).toEqual([]);
      // Fixing the file is picked up without a restart (read on every service bind).
      writeFileSync(badFile, SERVICE_PASSWORD);
      expect((await login(made, "alice", "alice-pw")).status).toBe(200);
    } finally {
      made.authenticator.close();
    }
  });

  test("at start the service account is checked once, and a failure is logged right away", async () => {
    const badFile = join(dir, "bad-password-at-start");
    writeFileSync(badFile, "not-the-password");
    const lines: string[] = [];
    const restore = log.capture(lines);
    const good = await ldapApp();
    const bad = await ldapApp({ bind_password_file: badFile });
    try {
      for (let i = 0; i < 100 && lines.length < 2; i++) await Bun.sleep(20);
      const text = lines.join("\n");
      expect(text).toContain('msg="ldap_auth connected and bound the service account"');
      expect(text).toMatch(
        /level=error msg="ldap_auth cannot use the directory.*status=503.*refused bind_dn's password/,
      );
      expect(text).not.toContain("not-the-password");
    } finally {
      restore();
      good.authenticator.close();
      bad.authenticator.close();
    }
  });

  test("a server that accepts and never answers: 401 within the operation timeout", async () => {
    const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const made = await ldapApp({
      addr: `127.0.0.1:${silent.port}`,
      timeout_seconds: 0.5,
      connect_timeout_seconds: 0.5,
    });
    try {
      const started = performance.now();
      const { result, lines } = await captureLogs(() => login(made, "alice", "alice-pw"));
      expect(result.status).toBe(401);
      expect(performance.now() - started).toBeLessThan(3000);
      expect(lines.join("\n")).toMatch(/status=503.*timed out/);
    } finally {
      made.authenticator.close();
      silent.stop(true);
    }
  });

  test("nothing listening: 401 at once", async () => {
    const made = await ldapApp({ addr: "127.0.0.1:1" });
    try {
      expect((await login(made, "alice", "alice-pw")).status).toBe(401);
    } finally {
      made.authenticator.close();
    }
  });
});
