/** The ldap_auth section: docker_auth's keys, regauth's checks with key paths, and the escaping helpers. */
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { FilterParser } from "ldapts";
import { ConfigError } from "../../src/errors.ts";
import { accountAttributesInFilter, checkLdapConfig, parseLdapAddress } from "../../src/ldap/config.ts";
import { escapeDnValue, escapeFilterValue, firstCommonName } from "../../src/ldap/escaping.ts";
import { loadTestConfig, makeTempDir } from "../helpers.ts";
import { makeTestPki } from "./slapd.ts";

const dir = makeTempDir("regauth-ldap-config-");
const passwordFile = join(dir, "password");
writeFileSync(passwordFile, "  s3cret\n");
const emptyFile = join(dir, "empty");
writeFileSync(emptyFile, " \n");
const notPem = join(dir, "not.pem");
writeFileSync(notPem, "hello");

const valid = {
  addr: "ldap.example.org:389",
  bind_dn: "cn=reader,dc=example,dc=org",
  bind_password_file: passwordFile,
  base: "dc=example,dc=org",
  filter: "(&(uid=${account})(objectClass=person))",
};

async function problemsOf(section: Record<string, unknown>): Promise<Record<string, string>> {
  try {
    await loadTestConfig({ ldap_auth: section });
    return {};
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return Object.fromEntries(error.problems.map((p) => [p.path, p.message]));
  }
}

function settingsOf(section: Record<string, unknown>) {
  const problems: { path: string; message: string }[] = [];
  const settings = checkLdapConfig({ ...defaults(), ...section } as never, "ldap_auth", problems);
  expect(problems).toEqual([]);
  if (!settings) throw new Error("no settings");
  return settings;
}

function defaults() {
  return {
    tls: "",
    insecure_tls_skip_verify: false,
    initial_bind_as_user: false,
    connect_timeout_seconds: 5,
    timeout_seconds: 10,
    pool_size: 8,
  };
}

describe("ldap_auth config", () => {
  test("a docker_auth section loads, with regauth's defaults", async () => {
    const loaded = await loadTestConfig({
      ldap_auth: { ...valid, labels: { groups: { attribute: "memberOf", parse_cn: true } } },
    });
    expect(loaded.config.ldap_auth).toMatchObject({
      tls: "",
      connect_timeout_seconds: 5,
      timeout_seconds: 10,
      pool_size: 8,
      labels: { groups: { attribute: "memberOf", parse_cn: true } },
    });
  });

  test.each([
    [{ addr: "ldap://ldap.example.org" }, "ldap://ldap.example.org:389", "none"],
    [{ addr: "ldaps://ldap.example.org" }, "ldaps://ldap.example.org:636", "always"],
    [{ addr: "LDAPS://ldap.example.org:1636/" }, "ldaps://ldap.example.org:1636", "always"],
    [{ addr: "ldap.example.org:636" }, "ldaps://ldap.example.org:636", "always"],
    [{ addr: "ldap.example.org:636", tls: "none" }, "ldap://ldap.example.org:636", "none"],
    [{ addr: "ldap.example.org:389", tls: "starttls" }, "ldap://ldap.example.org:389", "starttls"],
    [{ addr: "[::1]:389" }, "ldap://[::1]:389", "none"],
    [{ addr: "ldap.example.org" }, "ldap://ldap.example.org:389", "none"],
    [{ addr: "ldap.example.org", tls: "always" }, "ldaps://ldap.example.org:636", "always"],
  ])("addr %j → %s (tls %s)", (section, url, tls) => {
    const settings = settingsOf({ ...valid, ...section });
    expect(settings.url).toBe(url);
    expect(settings.tls).toBe(tls as "none");
  });

  test("an Active Directory filter with an extensible match loads", () => {
    const filter =
      "(&(sAMAccountName=${account})(objectCategory=person)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))";
    expect(settingsOf({ ...valid, filter }).accountAttribute).toBe("samaccountname");
  });

  test("the service password is read trimmed", () => {
    expect(settingsOf(valid).bindPasswordFile).toBe(passwordFile);
  });

  test("the account attribute defaults to the one compared with ${account}", () => {
    expect(settingsOf(valid).accountAttribute).toBe("uid");
    expect(settingsOf({ ...valid, filter: "(sAMAccountName=${account})" }).accountAttribute).toBe(
      "samaccountname",
    );
    expect(
      settingsOf({ ...valid, filter: "(|(uid=${account})(mail=${account}))" }).accountAttribute,
    ).toBeNull();
    expect(
      settingsOf({ ...valid, filter: "(|(uid=${account})(mail=${account}))", account_attribute: "uid" })
        .accountAttribute,
    ).toBe("uid");
  });

  test.each([
    [{ addr: "ldap://" }, "ldap_auth.addr"],
    [{ addr: "ldap.example.org:99999" }, "ldap_auth.addr"],
    [{ addr: "ldap://ldap.example.org/dc=example" }, "ldap_auth.addr"],
    [{ addr: "http://ldap.example.org" }, "ldap_auth.addr"],
    [{ addr: "host name:389" }, "ldap_auth.addr"],
    [{ addr: "ldaps://ldap.example.org", tls: "starttls" }, "ldap_auth.tls"],
    [{ addr: "ldap://ldap.example.org", tls: "always" }, "ldap_auth.tls"],
    [{ tls: "ssl" }, "ldap_auth.tls"],
    [{ filter: "(uid=alice)" }, "ldap_auth.filter"],
    [{ filter: "(uid=${account}" }, "ldap_auth.filter"],
    [{ bind_password_file: undefined }, "ldap_auth.bind_password_file"],
    [{ bind_password_file: join(dir, "missing") }, "ldap_auth.bind_password_file"],
    [{ bind_password_file: emptyFile }, "ldap_auth.bind_password_file"],
    [{ bind_dn: undefined }, "ldap_auth.bind_dn"],
    [{ bind_dn: "uid=${account},dc=example,dc=org" }, "ldap_auth.bind_dn"],
    [{ initial_bind_as_user: true }, "ldap_auth.bind_dn"],
    [{ ca_certificate: join(dir, "missing.pem") }, "ldap_auth.ca_certificate"],
    [{ ca_certificate: notPem }, "ldap_auth.ca_certificate"],
    [{ labels: { group: { parse_cn: true } } }, "ldap_auth.labels.group.attribute"],
    [{ labels: { group: { attribute: "memberOf", parse: true } } }, "ldap_auth.labels.group.parse"],
    [{ pool_size: 0 }, "ldap_auth.pool_size"],
    [{ timeout_seconds: 0 }, "ldap_auth.timeout_seconds"],
    [{ account_attribute: "uid)(x" }, "ldap_auth.account_attribute"],
    [{ bind_pasword_file: passwordFile }, "ldap_auth.bind_pasword_file"],
    [{ base: undefined }, "ldap_auth.base"],
  ])("%j is refused at %s", async (override, path) => {
    const problems = await problemsOf({ ...valid, ...override });
    expect(Object.keys(problems)).toContain(path);
  });

  test("problem messages never contain the service password", async () => {
    const problems = await problemsOf({ ...valid, filter: "nope" });
    expect(JSON.stringify(problems)).not.toContain("s3cret");
  });

  test("a real CA file passes; initial_bind_as_user needs no password file", async () => {
    const pki = makeTestPki();
    expect(await problemsOf({ ...valid, ca_certificate: pki.caPath })).toEqual({});
    expect(
      await problemsOf({
        ...valid,
        bind_dn: "uid=${account},ou=people,dc=example,dc=org",
        bind_password_file: undefined,
        initial_bind_as_user: true,
      }),
    ).toEqual({});
  });

  test("parseLdapAddress", () => {
    expect(parseLdapAddress("example.org:389")).toEqual({ host: "example.org", port: 389, scheme: null });
    expect(parseLdapAddress("[2001:db8::1]:636")).toEqual({ host: "2001:db8::1", port: 636, scheme: null });
    expect(parseLdapAddress("ldaps://example.org")).toEqual({
      host: "example.org",
      port: null,
      scheme: "ldaps",
    });
    expect(parseLdapAddress("example.org:0")).toBeNull();
    expect(parseLdapAddress("ldap://user@example.org")).toBeNull();
  });

  test("accountAttributesInFilter", () => {
    expect(accountAttributesInFilter("(&(objectClass=user)(sAMAccountName=${account}))")).toEqual([
      "samaccountname",
    ]);
    expect(accountAttributesInFilter("(uid=${account}*)")).toEqual([]);
  });
});

describe("escaping", () => {
  test.each([
    ["alice", "alice"],
    ["*", "\\2a"],
    ["*)(uid=*", "\\2a\\29\\28uid=\\2a"],
    ["admin)(|(uid=*", "admin\\29\\28|\\28uid=\\2a"],
    ["\\2a", "\\5c2a"],
    ["a\u0000b", "a\\00b"],
    ["é", "é"],
  ])("filter value %j → %j (RFC 4515 §3)", (value, escaped) => {
    expect(escapeFilterValue(value)).toBe(escaped);
    // And ldapts parses it back to exactly the literal value, as one equality assertion.
    const filter = FilterParser.parseString(`(uid=${escaped})`) as unknown as {
      value: string;
      constructor: { name: string };
    };
    expect(filter.constructor.name).toBe("EqualityFilter");
    expect(filter.value).toBe(value);
  });

  test.each([
    ["alice", "alice"],
    ["a,ou=admins", "a\\,ou\\=admins"],
    ["a+cn=x", "a\\+cn\\=x"],
    ['"a"', '\\"a\\"'],
    ["#a", "\\#a"],
    ["a#", "a#"],
    [" a ", "\\ a\\ "],
    [" ", "\\ "],
    ["a;b<c>d\\e", "a\\;b\\<c\\>d\\\\e"],
    ["a\u0000", "a\\00"],
  ])("DN value %j → %j (RFC 4514 §2.4)", (value, escaped) => {
    expect(escapeDnValue(value)).toBe(escaped);
  });

  test.each([
    ["cn=qa,ou=group,dc=x", "qa"],
    ["CN=Domain Admins,OU=Groups,DC=corp,DC=example", "Domain Admins"],
    ["ou=x,Cn=second,cn=third", "second"],
    ["cn=Smith\\, John,ou=people", "Smith, John"],
    ["cn=a\\2Cb,ou=g", "a,b"],
    ['cn="quoted, value",ou=g', "quoted, value"],
    ["cn=caf\\C3\\A9,ou=g", "café"],
    ["ou=nocn,dc=x", null],
    ["", null],
  ])("first CN of %j is %j", (dn, cn) => {
    expect(firstCommonName(dn)).toBe(cn);
  });
});
