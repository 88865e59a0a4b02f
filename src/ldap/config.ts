/**
 * The `ldap_auth` config section: cesanta/docker_auth's keys (authn/ldap_auth.go LDAPAuthConfig),
 * so an existing section loads unchanged, plus regauth's own connection limits with defaults.
 * `checkLdapConfig` adds the semantic checks and resolves the section into `LdapSettings`, the
 * shape the authenticator uses (parsed address, TLS mode, which attribute names the account).
 */
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { type Static, Type } from "@sinclair/typebox";
import type { ConfigProblem } from "../errors.ts";

const strict = { additionalProperties: false } as const;

export const LdapLabelConfig = Type.Object(
  {
    attribute: Type.String({ minLength: 1, description: "LDAP attribute whose values become the label." }),
    // Optional rather than defaulted: TypeBox's Value.Default does not descend into Record values.
    parse_cn: Type.Optional(
      Type.Boolean({
        description: "Keep only the CN of DN values: cn=qa,ou=groups,dc=x → qa. Default false.",
      }),
    ),
    lower_case: Type.Optional(
      Type.Boolean({ description: "Lower-case the values (after parse_cn). Default false." }),
    ),
  },
  strict,
);

export const LdapAuthConfig = Type.Object(
  {
    addr: Type.String({
      minLength: 1,
      description:
        "HOST:PORT of the LDAP server (docker_auth's form); ldap://HOST[:PORT] and ldaps://HOST[:PORT] are accepted too.",
    }),
    tls: Type.Union(
      [Type.Literal(""), Type.Literal("none"), Type.Literal("always"), Type.Literal("starttls")],
      {
        default: "",
        description: 'none, always (LDAPS) or starttls. Empty: "always" for port 636 or ldaps://, else none.',
      },
    ),
    insecure_tls_skip_verify: Type.Boolean({
      default: false,
      description: "Do not verify the server certificate or host name. For testing only.",
    }),
    ca_certificate: Type.Optional(
      Type.String({ description: "PEM CA bundle to verify the server with, instead of the system roots." }),
    ),
    bind_dn: Type.Optional(
      Type.String({
        description:
          "Service account DN for the search; empty: anonymous search. With initial_bind_as_user, a template with ${account}.",
      }),
    ),
    bind_password_file: Type.Optional(
      Type.String({
        description: "File holding the service account's password (surrounding whitespace trimmed).",
      }),
    ),
    base: Type.String({ description: "Search base DN, e.g. ou=people,dc=example,dc=org." }),
    filter: Type.String({
      minLength: 1,
      description: "Search filter with ${account}, e.g. (&(uid=${account})(objectClass=person)).",
    }),
    labels: Type.Optional(Type.Record(Type.String({ minLength: 1 }), LdapLabelConfig)),
    initial_bind_as_user: Type.Boolean({
      default: false,
      description: "Bind as bind_dn (a template with ${account}) with the user's own password, then search.",
    }),
    account_attribute: Type.Optional(
      Type.String({
        description:
          "regauth: attribute whose value becomes the token subject and ACL account (canonical spelling). Default: the attribute compared with ${account} in filter.",
      }),
    ),
    connect_timeout_seconds: Type.Number({
      exclusiveMinimum: 0,
      maximum: 300,
      default: 5,
      description: "regauth: give up connecting (TCP and TLS) after this long.",
    }),
    timeout_seconds: Type.Number({
      exclusiveMinimum: 0,
      maximum: 300,
      default: 10,
      description:
        "regauth: give up on one LDAP operation (bind, search), or on waiting for a free connection, after this long.",
    }),
    pool_size: Type.Integer({
      minimum: 1,
      maximum: 64,
      default: 8,
      description: "regauth: most connections open to the LDAP server at once; logins beyond it wait.",
    }),
  },
  strict,
);

export type LdapAuthConfig = Static<typeof LdapAuthConfig>;

export type LdapTlsMode = "none" | "always" | "starttls";

/** The section resolved for use: everything parsed and checked once, at load. */
export interface LdapSettings {
  /** ldap:// or ldaps:// URL for ldapts; the host is bracketed when it is IPv6. */
  url: string;
  host: string;
  port: number;
  tls: LdapTlsMode;
  insecureSkipVerify: boolean;
  caCertificatePath: string | undefined;
  bindDn: string;
  bindPasswordFile: string | undefined;
  base: string;
  filter: string;
  labels: Record<string, { attribute: string; parseCn: boolean; lowerCase: boolean }>;
  initialBindAsUser: boolean;
  /** Attribute holding the canonical account name, or null to use the name as typed (docker_auth). */
  accountAttribute: string | null;
  connectTimeoutMs: number;
  operationTimeoutMs: number;
  poolSize: number;
}

export const ACCOUNT_PLACEHOLDER = "${account}";

/**
 * Parses `addr`. docker_auth dials it as HOST:PORT, so a URL there gives its users a 500 (issue
 * #183); regauth takes both. Returns null when it is neither.
 */
export function parseLdapAddress(
  addr: string,
): { host: string; port: number | null; scheme: "ldap" | "ldaps" | null } | null {
  let scheme: "ldap" | "ldaps" | null = null;
  let rest = addr;
  const url = /^(ldaps?):\/\/(.*?)\/?$/i.exec(addr);
  if (url) {
    scheme = (url[1] as string).toLowerCase() as "ldap" | "ldaps";
    rest = url[2] as string;
  }
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+))(?::([0-9]{1,5}))?$/.exec(rest);
  if (!match) return null;
  const host = (match[1] ?? match[2]) as string;
  const port = match[3] === undefined ? null : Number(match[3]);
  if (port !== null && (port < 1 || port > 65_535)) return null;
  return { host, port, scheme };
}

/** Reads the service account password: trimmed like docker_auth, never logged. Throws on failure. */
export function readBindPassword(path: string): string {
  return readFileSync(path, "utf8").trim();
}

/** Attributes compared for equality with `${account}` in the filter, e.g. `uid` in `(uid=${account})`. */
export function accountAttributesInFilter(filter: string): string[] {
  const names = new Set<string>();
  for (const match of filter.matchAll(/\(\s*([A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)*)\s*=\$\{account\}\)/g))
    names.add((match[1] as string).toLowerCase());
  return [...names];
}

/** Semantic checks with key paths; returns the resolved settings when there was nothing wrong. */
export function checkLdapConfig(
  section: LdapAuthConfig,
  path: string,
  problems: ConfigProblem[],
): LdapSettings | null {
  const before = problems.length;
  const problem = (key: string, message: string) =>
    problems.push({ path: key === "" ? path : `${path}.${key}`, message });

  const address = parseLdapAddress(section.addr);
  let tls: LdapTlsMode = section.tls === "" ? "none" : section.tls;
  let port = 389;
  if (!address) {
    problem(
      "addr",
      `expected HOST:PORT (e.g. ldap.example.org:389), ldap://HOST[:PORT] or ldaps://HOST[:PORT], got ${JSON.stringify(section.addr)}`,
    );
  } else {
    if (address.scheme === "ldaps") {
      if (section.tls === "none" || section.tls === "starttls")
        problem(
          "tls",
          `${section.tls} contradicts the ldaps:// address; use tls: always or an ldap:// address`,
        );
      tls = "always";
    } else if (address.scheme === "ldap" && section.tls === "always") {
      problem("tls", "always (LDAPS) contradicts the ldap:// address; use ldaps:// or tls: starttls");
    }
    // docker_auth: an empty tls with port 636 means LDAPS.
    if (section.tls === "" && address.port === 636) tls = "always";
    port = address.port ?? (tls === "always" ? 636 : 389);
  }

  if (section.ca_certificate !== undefined) {
    try {
      const pem = readFileSync(section.ca_certificate, "utf8");
      if (!pem.includes("-----BEGIN CERTIFICATE-----")) throw new Error("no PEM certificate in it");
      new X509Certificate(pem);
    } catch (error) {
      problem(
        "ca_certificate",
        `cannot use ${section.ca_certificate} as a PEM CA bundle: ${describeFileError(error)}`,
      );
    }
  }

  const bindDn = section.bind_dn ?? "";
  if (section.initial_bind_as_user) {
    if (!bindDn.includes(ACCOUNT_PLACEHOLDER))
      problem("bind_dn", "with initial_bind_as_user, bind_dn must be a DN template containing ${account}");
  } else if (bindDn.includes(ACCOUNT_PLACEHOLDER)) {
    problem("bind_dn", "contains ${account}; set initial_bind_as_user: true to bind as the user");
  } else if (bindDn !== "" && section.bind_password_file === undefined) {
    // An empty password would make the service bind an unauthenticated bind (RFC 4513 §5.1.2).
    problem("bind_password_file", "required when bind_dn is set");
  } else if (bindDn === "" && section.bind_password_file !== undefined) {
    problem("bind_dn", "required when bind_password_file is set");
  } else if (section.bind_password_file !== undefined) {
    try {
      if (readBindPassword(section.bind_password_file) === "") throw new Error("the file is empty");
    } catch (error) {
      problem("bind_password_file", `cannot read ${section.bind_password_file}: ${describeFileError(error)}`);
    }
  }

  if (!section.filter.includes(ACCOUNT_PLACEHOLDER)) {
    problem("filter", "must contain ${account}, e.g. (&(uid=${account})(objectClass=person))");
  } else {
    try {
      // Required here, not imported: the config schema imports this module, and every config
      // load (the CLI's too) would otherwise load ldapts (issue 12 item 6).
      const { FilterParser } = require("ldapts") as typeof import("ldapts");
      FilterParser.parseString(section.filter.replaceAll(ACCOUNT_PLACEHOLDER, "account"));
    } catch (error) {
      problem("filter", `not a valid LDAP filter (RFC 4515): ${(error as Error).message}`);
    }
  }

  let accountAttribute: string | null = section.account_attribute ?? null;
  if (accountAttribute !== null && !/^(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)*)$/.test(accountAttribute))
    problem("account_attribute", `not an attribute name: ${JSON.stringify(accountAttribute)}`);
  if (accountAttribute === null) {
    const candidates = accountAttributesInFilter(section.filter);
    accountAttribute = candidates.length === 1 ? (candidates[0] as string) : null;
  }

  if (problems.length > before || !address) return null;
  const urlHost = address.host.includes(":") ? `[${address.host}]` : address.host;
  return {
    url: `${tls === "always" ? "ldaps" : "ldap"}://${urlHost}:${port}`,
    host: address.host,
    port,
    tls,
    insecureSkipVerify: section.insecure_tls_skip_verify,
    caCertificatePath: section.ca_certificate,
    bindDn,
    bindPasswordFile: section.initial_bind_as_user ? undefined : section.bind_password_file,
    base: section.base,
    filter: section.filter,
    labels: Object.fromEntries(
      Object.entries(section.labels ?? {}).map(([label, mapping]) => [
        label,
        {
          attribute: mapping.attribute,
          parseCn: mapping.parse_cn ?? false,
          lowerCase: mapping.lower_case ?? false,
        },
      ]),
    ),
    initialBindAsUser: section.initial_bind_as_user,
    accountAttribute,
    connectTimeoutMs: Math.round(section.connect_timeout_seconds * 1000),
    operationTimeoutMs: Math.round(section.timeout_seconds * 1000),
    poolSize: section.pool_size,
  };
}

function describeFileError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "ENOENT") return "no such file";
  if (code === "EACCES") return "permission denied";
  if (code === "EISDIR") return "is a directory";
  return (error as Error).message;
}
