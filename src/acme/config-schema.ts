/**
 * `server.letsencrypt` (issue 16): docker_auth's keys `host`, `email` and `cache_dir`
 * (reference.yml), plus `directory_url` for other CAs and staging, `ca_file` for a private CA's
 * root (pebble, a company's step-ca) and `http_challenge_addr` for where the http-01 answer is
 * served. Unlike docker_auth (which serves plain HTTP with this section, its PR #420), regauth
 * then serves HTTPS only.
 */
import { X509Certificate } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { type Static, Type } from "@sinclair/typebox";
import type { ConfigProblem } from "../errors.ts";

/** Let's Encrypt's production directory (RFC 8555 §7.1.1). */
export const LETS_ENCRYPT_DIRECTORY_URL = "https://acme-v02.api.letsencrypt.org/directory";

export const LetsEncryptConfig = Type.Object(
  {
    host: Type.String({
      minLength: 1,
      maxLength: 253,
      description:
        "The DNS name the certificate is for: clients reach regauth by it, and it must resolve to this server (for http-01, port 80 must reach http_challenge_addr).",
    }),
    email: Type.Optional(
      Type.String({
        minLength: 3,
        maxLength: 254,
        description: "Contact address given to the CA (expiry notices, policy changes). Optional.",
      }),
    ),
    cache_dir: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          "Where the ACME account key and the certificate are kept (0600 files). Default: the data directory.",
      }),
    ),
    directory_url: Type.String({
      default: LETS_ENCRYPT_DIRECTORY_URL,
      description:
        "regauth extension: the CA's ACME directory. Default Let's Encrypt; staging: https://acme-staging-v02.api.letsencrypt.org/directory.",
    }),
    ca_file: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          "regauth extension: PEM root(s) to trust for directory_url's HTTPS, for a private CA (pebble, step-ca). Default: the system's roots.",
      }),
    ),
    http_challenge_addr: Type.String({
      default: ":80",
      description:
        "regauth extension: HOST:PORT where the http-01 challenge is answered while an order is validated (the CA always connects to port 80: forward it here if this is not :80).",
    }),
  },
  { additionalProperties: false },
);

export type LetsEncryptConfig = Static<typeof LetsEncryptConfig>;

// RFC 1123 labels; lower case only, so the file names and SAN comparison need no folding.
const DNS_LABEL = "[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?";
const DNS_NAME = new RegExp(`^${DNS_LABEL}(?:\\.${DNS_LABEL})*$`);
// A mailto: contact (RFC 8555 §7.3): no spaces, commas or control characters that would change the URI.
const EMAIL = /^[^\s@,;:<>()[\]\\"]+@[a-z0-9.-]+\.[a-z]{2,}$/i;

/**
 * Problems with a `letsencrypt` section the schema accepted, at `path` (server.letsencrypt).
 * `listenAddressOk` checks a HOST:PORT (load.ts parseListenAddress).
 */
export function letsEncryptProblems(
  section: LetsEncryptConfig,
  path: string,
  listenAddressOk: (addr: string) => boolean,
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const { host } = section;
  if (host.includes("://") || host.includes("/"))
    problems.push({
      path: `${path}.host`,
      message: `a host name only (no scheme or path), got ${JSON.stringify(host)}`,
    });
  else if (host.includes("*"))
    problems.push({
      path: `${path}.host`,
      message:
        "a wildcard name needs the dns-01 challenge, which regauth does not do; give the one name clients use",
    });
  else if (/:\d+$/.test(host))
    problems.push({
      path: `${path}.host`,
      message: "a host name without a port (the port is server.addr's)",
    });
  else if (host.endsWith(".") && DNS_NAME.test(host.slice(0, -1).toLowerCase()))
    problems.push({
      path: `${path}.host`,
      message: `write it without the trailing dot: ${host.slice(0, -1).toLowerCase()} (the certificate's name has none)`,
    });
  else if (host !== host.toLowerCase() && DNS_NAME.test(host.toLowerCase()))
    problems.push({ path: `${path}.host`, message: `write it in lower case: ${host.toLowerCase()}` });
  else if (!DNS_NAME.test(host) || /^[0-9.]+$/.test(host))
    problems.push({
      path: `${path}.host`,
      message: `not a DNS name (letters, digits, hyphens and dots; no IP address), got ${JSON.stringify(host).slice(0, 80)}`,
    });
  if (section.email !== undefined && !EMAIL.test(section.email))
    problems.push({
      path: `${path}.email`,
      message: `not an email address, got ${JSON.stringify(section.email).slice(0, 80)}`,
    });
  let url: URL | null = null;
  try {
    url = new URL(section.directory_url);
  } catch {
    problems.push({
      path: `${path}.directory_url`,
      message: `not a URL, got ${JSON.stringify(section.directory_url).slice(0, 80)}`,
    });
  }
  if (url && url.protocol !== "https:")
    problems.push({
      path: `${path}.directory_url`,
      message: "must be https:// (RFC 8555 §6.1: ACME runs over HTTPS only)",
    });
  else if (url && (url.username !== "" || url.password !== ""))
    problems.push({ path: `${path}.directory_url`, message: "must not carry a user name or password" });
  if (!listenAddressOk(section.http_challenge_addr))
    problems.push({
      path: `${path}.http_challenge_addr`,
      message: `expected HOST:PORT (e.g. :80 or 127.0.0.1:8080), got ${JSON.stringify(section.http_challenge_addr).slice(0, 80)}`,
    });
  if (section.ca_file !== undefined) {
    const problem = caFileProblem(section.ca_file);
    if (problem) problems.push({ path: `${path}.ca_file`, message: problem });
  }
  return problems;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]*-----END CERTIFICATE-----/g;

/**
 * ca_file must be PEM certificates: a directory, or a file TLS cannot use, otherwise surfaced
 * only at the first order, as "EISDIR" or as "cannot reach the ACME server: Invalid CA".
 */
function caFileProblem(file: string): string | null {
  let text: string;
  try {
    if (!statSync(file).isFile()) return `${file} is not a file (give the PEM file of the CA's root)`;
    text = readFileSync(file, "utf8");
  } catch {
    return `cannot read ${file}`;
  }
  const blocks = text.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) return `${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`;
  for (const [index, block] of blocks.entries())
    try {
      new X509Certificate(block);
    } catch {
      return `certificate ${index + 1} in ${file} is not a PEM certificate`;
    }
  return null;
}
