/**
 * IP addresses and CIDR ranges for ACL `ip` matches, with Go's net.IPNet semantics (docker_auth):
 * a bare address is a /32 or /128, and IPv4 addresses also match in their IPv4-mapped IPv6 form.
 * Addresses are held as 16 bytes; IPv4 becomes ::ffff:a.b.c.d.
 *
 * Like Go's IPNet.Contains, an IPv4 range (also one written ::ffff:a.b.c.d/n) matches only IPv4
 * clients, and an IPv6 range only IPv6 clients: `::/0` does not match 127.0.0.1.
 */

export interface IpRange {
  bytes: Uint8Array;
  prefixBits: number;
  /** True for an IPv4 range; then prefixBits >= 96 covers the ::ffff: prefix. */
  isV4: boolean;
}

/** Parses an IPv4 or IPv6 address into 16 bytes, or null when it is not one. */
export function parseIp(text: string): Uint8Array | null {
  if (text.includes(":")) return parseIpv6(text);
  const v4 = parseIpv4(text);
  if (!v4) return null;
  const bytes = new Uint8Array(16);
  bytes[10] = 0xff;
  bytes[11] = 0xff;
  bytes.set(v4, 12);
  return bytes;
}

/** Parses `addr` or `addr/prefix`; null when malformed (e.g. `192.168.0.*`, `/100`). */
export function parseIpRange(text: string): IpRange | null {
  const slash = text.indexOf("/");
  const addressText = slash === -1 ? text : text.slice(0, slash);
  const bytes = parseIp(addressText);
  if (!bytes) return null;
  const writtenAsV4 = !addressText.includes(":");
  const maxBits = writtenAsV4 ? 32 : 128;
  let bits = maxBits;
  if (slash !== -1) {
    const prefixText = text.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(prefixText)) return null;
    bits = Number(prefixText);
    if (bits > maxBits) return null;
  }
  if (writtenAsV4) return { bytes, prefixBits: 96 + bits, isV4: true };
  // Go treats ::ffff:a.b.c.d/n as the IPv4 range a.b.c.d/(n-96), and /n < 96 as 0.0.0.0/0.
  if (isV4Mapped(bytes)) return { bytes, prefixBits: Math.max(96, bits), isV4: true };
  return { bytes, prefixBits: bits, isV4: false };
}

function isV4Mapped(bytes: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return false;
  return bytes[10] === 0xff && bytes[11] === 0xff;
}

export function ipInRange(ip: Uint8Array, range: IpRange): boolean {
  if (isV4Mapped(ip) !== range.isV4) return false;
  let bits = range.prefixBits;
  for (let i = 0; i < 16 && bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((ip[i] as number) & mask) !== ((range.bytes[i] as number) & mask)) return false;
  }
  return true;
}

function parseIpv4(text: string): Uint8Array | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = parts[i] as string;
    // Go rejects leading zeros ("010") as ambiguous octal; so do we.
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return null;
    const value = Number(part);
    if (value > 255) return null;
    out[i] = value;
  }
  return out;
}

function parseIpv6(text: string): Uint8Array | null {
  if (text.includes("%")) return null; // zones never appear in a client address we match on
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const head = halves[0] === "" ? [] : (halves[0] as string).split(":");
  const tail = halves.length === 2 ? (halves[1] === "" ? [] : (halves[1] as string).split(":")) : [];
  const groups: number[] = [];
  const pushGroups = (items: string[], into: number[], isEnd: boolean): boolean => {
    for (let i = 0; i < items.length; i++) {
      const item = items[i] as string;
      if (item.includes(".")) {
        // Embedded IPv4 is allowed only as the last item of the whole address (not before "::").
        if (!isEnd || i !== items.length - 1) return false;
        const v4 = parseIpv4(item);
        if (!v4) return false;
        into.push(((v4[0] as number) << 8) | (v4[1] as number), ((v4[2] as number) << 8) | (v4[3] as number));
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(item)) return false;
        into.push(Number.parseInt(item, 16));
      }
    }
    return true;
  };
  const headGroups: number[] = [];
  const tailGroups: number[] = [];
  if (!pushGroups(head, headGroups, halves.length === 1) || !pushGroups(tail, tailGroups, true)) return null;
  if (halves.length === 1) {
    if (headGroups.length !== 8) return null;
    groups.push(...headGroups);
  } else {
    const missing = 8 - headGroups.length - tailGroups.length;
    if (missing < 1) return null;
    groups.push(...headGroups, ...new Array<number>(missing).fill(0), ...tailGroups);
  }
  const bytes = new Uint8Array(16);
  groups.forEach((group, i) => {
    bytes[i * 2] = group >> 8;
    bytes[i * 2 + 1] = group & 0xff;
  });
  return bytes;
}
