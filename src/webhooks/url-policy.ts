/**
 * Where a webhook may point (issue 11 item 4; docs/webhooks.md "What URLs are refused"): a
 * webhook must not become a way to make regauth reach its own network (SSRF: the cloud metadata
 * service at 169.254.169.254, an admin port on loopback, the LAN). Only http and https; no
 * loopback, link-local, private, CGNAT, unspecified, multicast or reserved address, in any
 * spelling, unless inside one of `webhooks.allow_private_networks`.
 *
 * Checked twice: when a webhook is created or changed (the URL's host, if it is an address), and
 * before every delivery on the addresses its name resolves to, which are then the ones connected
 * to (src/webhooks/deliver.ts), so a name that resolves to 127.0.0.1 is refused too.
 */
import { type IpRange, ipInRange, parseIp, parseIpRange } from "../ip.ts";

/** A refused address: which rule, in words a 400 can show. */
export interface Refusal {
  rule: string;
}

/** Ranges no webhook may reach by default, each with the rule it is refused under. */
const REFUSED_RANGES: readonly [cidr: string, rule: string][] = [
  ["0.0.0.0/8", "unspecified address (0.0.0.0/8)"],
  ["127.0.0.0/8", "loopback (127.0.0.0/8)"],
  ["10.0.0.0/8", "private network (10.0.0.0/8)"],
  ["172.16.0.0/12", "private network (172.16.0.0/12)"],
  ["192.168.0.0/16", "private network (192.168.0.0/16)"],
  ["169.254.0.0/16", "link-local (169.254.0.0/16, cloud metadata)"],
  ["100.64.0.0/10", "shared address space (CGNAT, 100.64.0.0/10)"],
  ["192.0.0.0/24", "IETF protocol assignments (192.0.0.0/24)"],
  ["198.18.0.0/15", "benchmarking network (198.18.0.0/15)"],
  ["224.0.0.0/4", "multicast (224.0.0.0/4)"],
  ["240.0.0.0/4", "reserved (240.0.0.0/4, broadcast)"],
  ["::/128", "unspecified address (::)"],
  ["::1/128", "loopback (::1)"],
  ["fe80::/10", "link-local (fe80::/10)"],
  ["fec0::/10", "site-local (fec0::/10)"],
  ["fc00::/7", "unique local address (fc00::/7)"],
  ["ff00::/8", "multicast (ff00::/8)"],
  // IPv4-compatible addresses (::a.b.c.d, deprecated by RFC 4291): stacks route some to IPv4.
  ["::/96", "IPv4-compatible IPv6 address (::/96)"],
  ["100::/64", "discard prefix (100::/64)"],
  ["2001:db8::/32", "documentation prefix (2001:db8::/32)"],
  ["3fff::/20", "documentation prefix (3fff::/20)"],
  ["192.0.2.0/24", "documentation network (192.0.2.0/24)"],
  ["198.51.100.0/24", "documentation network (198.51.100.0/24)"],
  ["203.0.113.0/24", "documentation network (203.0.113.0/24)"],
  // Prefixes that carry IPv4 to a translator or tunnel on the way (review of issue 11 item 4):
  // where that lands is the local network's business, not the public address the URL shows.
  ["64:ff9b:1::/48", "local-use NAT64 prefix (64:ff9b:1::/48, RFC 8215)"],
  ["2001::/32", "Teredo tunnel (2001::/32, RFC 4380)"],
  ["::ffff:0:0:0/96", "IPv4-translated address (::ffff:0:0:0/96, RFC 2765)"],
];

const REFUSED: readonly { range: IpRange; rule: string }[] = REFUSED_RANGES.map(([cidr, rule]) => {
  const range = parseIpRange(cidr);
  if (!range) throw new Error(`bad built-in range ${cidr}`);
  return { range, rule };
});

/** Parses `webhooks.allow_private_networks`; throws naming the first malformed entry. */
export function parseAllowedNetworks(cidrs: readonly string[]): IpRange[] {
  return cidrs.map((cidr, i) => {
    const range = parseIpRange(cidr);
    if (!range)
      throw new Error(`webhooks.allow_private_networks.${i}: ${JSON.stringify(cidr)} is not a CIDR`);
    return range;
  });
}

/**
 * The IPv4 address inside an IPv6 one that carries it to IPv4, as 16 mapped bytes, with the
 * prefix's name: NAT64 64:ff9b::/96 (RFC 6052, the last 32 bits) and 6to4 2002::/16 (RFC 3056,
 * bits 16-47: 2002:7f00:1:: is relayed to 127.0.0.1).
 */
function embeddedV4(ip: Uint8Array): { v4: Uint8Array; carrier: string } | null {
  const mapped = (from: number) => {
    const v4 = new Uint8Array(16);
    v4[10] = 0xff;
    v4[11] = 0xff;
    v4.set(ip.subarray(from, from + 4), 12);
    return v4;
  };
  const nat64 = [0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0];
  if (nat64.every((b, i) => ip[i] === b)) return { v4: mapped(12), carrier: "a NAT64 address" };
  if (ip[0] === 0x20 && ip[1] === 0x02) return { v4: mapped(2), carrier: "a 6to4 address" };
  return null;
}

/**
 * Why `ip` (16 bytes, src/ip.ts) may not be reached, or null when it may. An address inside an
 * allowed range is allowed whatever else it is. IPv4-mapped IPv6 (::ffff:127.0.0.1) is the IPv4
 * address for both, as src/ip.ts holds IPv4 that way.
 */
export function refusalOf(ip: Uint8Array, allowed: readonly IpRange[]): Refusal | null {
  if (allowed.some((range) => ipInRange(ip, range))) return null;
  const inner = embeddedV4(ip);
  if (inner) {
    const innerRefusal = refusalOf(inner.v4, allowed);
    if (innerRefusal) return { rule: `${innerRefusal.rule} inside ${inner.carrier}` };
  }
  const found = REFUSED.find(({ range }) => ipInRange(ip, range));
  return found ? { rule: found.rule } : null;
}

/** A URL's hostname as an address or a name: brackets and one trailing dot gone, lowercase. */
export function hostOf(url: URL): string {
  return url.hostname
    .replace(/^\[|\]$/g, "")
    .replace(/\.$/, "")
    .toLowerCase();
}

export type UrlCheck = { ok: true; url: URL } | { ok: false; reason: string };

/**
 * The checks a URL passes before it is stored: an absolute http(s) URL, no fragment, and a host
 * that is not a refused address or `localhost`. The WHATWG parser already turns the odd IPv4
 * spellings (2130706433, 0x7f000001, 0177.0.0.1, 127.1) into 127.0.0.1, so they meet the same
 * rule. A host name is checked when it is resolved, before each delivery.
 */
export function checkWebhookUrl(text: string, allowed: readonly IpRange[]): UrlCheck {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { ok: false, reason: "not an absolute URL (e.g. https://ci.example.com/hooks/regauth)" };
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    return { ok: false, reason: `only http and https URLs, not ${url.protocol}` };
  if (url.hash !== "") return { ok: false, reason: "no #fragment" };
  if (url.port === "0") return { ok: false, reason: "port 0 cannot be connected to" };
  try {
    // Sent as Authorization: Basic (src/webhooks/deliver.ts), so they must decode.
    decodeURIComponent(url.username);
    decodeURIComponent(url.password);
  } catch {
    return { ok: false, reason: "the user name or password in the URL is not valid percent-encoding" };
  }
  const host = hostOf(url);
  if (host === "") return { ok: false, reason: "no host" };
  const ip = parseIp(host);
  if (ip) {
    const refusal = refusalOf(ip, allowed);
    if (refusal) return { ok: false, reason: refusedReason(host, refusal) };
    return { ok: true, url };
  }
  if (host === "localhost" || host.endsWith(".localhost")) {
    // RFC 6761: always loopback. Allowed only when loopback itself is.
    if (!allowed.some((range) => ipInRange(parseIp("127.0.0.1") as Uint8Array, range)))
      return { ok: false, reason: refusedReason(host, { rule: "loopback (localhost)" }) };
    return { ok: true, url };
  }
  if (!/^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/.test(host))
    return { ok: false, reason: `${JSON.stringify(host)} is not a host name` };
  return { ok: true, url };
}

export function refusedReason(host: string, refusal: Refusal): string {
  return `${host} is ${refusal.rule}, which webhooks may not reach unless webhooks.allow_private_networks includes it`;
}

/** The URL as shown back: a user name and password in it become `***`. */
export function redactUrl(text: string): string {
  try {
    const url = new URL(text);
    if (url.username === "" && url.password === "") return url.href;
    url.username = "***";
    url.password = "";
    return url.href;
  } catch {
    return "(invalid URL)";
  }
}
