/** IP addresses and ranges for ACL `ip` matches (Go net.ParseIP / net.ParseCIDR semantics). */
import { describe, expect, it } from "bun:test";
import { ipInRange, parseIp, parseIpRange } from "../../src/ip.ts";

function hex(bytes: Uint8Array | null): string | null {
  return bytes === null ? null : Buffer.from(bytes).toString("hex");
}

describe("parseIp", () => {
  const valid: [string, string][] = [
    ["127.0.0.1", "00000000000000000000ffff7f000001"],
    ["0.0.0.0", "00000000000000000000ffff00000000"],
    ["255.255.255.255", "00000000000000000000ffffffffffff"],
    ["::", "00000000000000000000000000000000"],
    ["::1", "00000000000000000000000000000001"],
    ["1::", "00010000000000000000000000000000"],
    ["2001:db8::1", "20010db8000000000000000000000001"],
    ["2001:DB8::1", "20010db8000000000000000000000001"],
    ["1:2:3:4:5:6:7:8", "00010002000300040005000600070008"],
    ["1:2:3:4:5:6:7::", "00010002000300040005000600070000"],
    ["::2:3:4:5:6:7:8", "00000002000300040005000600070008"],
    ["::ffff:1.2.3.4", "00000000000000000000ffff01020304"],
    ["1:2:3:4:5:6:1.2.3.4", "00010002000300040005000601020304"],
  ];
  for (const [text, expected] of valid) {
    it(`${text} → ${expected}`, () => expect(hex(parseIp(text))).toBe(expected));
  }
  const invalid = [
    "",
    "1.2.3",
    "1.2.3.4.5",
    "256.1.1.1",
    "01.2.3.4",
    "1.2.3.-4",
    "1.2.3.4 ",
    " 1.2.3.4",
    "a.b.c.d",
    "192.168.0.*",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7:8::",
    "1::2::3",
    ":1:2:3:4:5:6:7",
    "12345::1",
    "g::1",
    "fe80::1%eth0",
    "::1.2.3.4:1",
    "1.2.3.4::",
    "localhost",
    "[::1]",
  ];
  for (const text of invalid) {
    it(`refuses ${JSON.stringify(text)}`, () => expect(parseIp(text)).toBeNull());
  }
});

describe("parseIpRange", () => {
  it("a bare address is a host range", () => {
    expect(parseIpRange("10.0.0.1")?.prefixBits).toBe(128);
    expect(parseIpRange("2001:db8::1")?.prefixBits).toBe(128);
  });
  it("IPv4 prefixes count from the mapped prefix", () => {
    expect(parseIpRange("10.0.0.0/8")?.prefixBits).toBe(104);
    expect(parseIpRange("0.0.0.0/0")?.prefixBits).toBe(96);
  });
  for (const text of [
    "10.0.0.0/33",
    "10.0.0.0/",
    "10.0.0.0/-1",
    "10.0.0.0/ 8",
    "10.0.0.0/8/8",
    "10.0.0.0/1000",
    "::/129",
    "2001:db8::/222",
    "192.168.0.1/100",
    "foo/8",
  ]) {
    it(`refuses ${JSON.stringify(text)}`, () => expect(parseIpRange(text)).toBeNull());
  }
});

describe("ipInRange", () => {
  const cases: [string, string, boolean][] = [
    ["10.0.0.0/8", "10.255.255.255", true],
    ["10.0.0.0/8", "11.0.0.0", false],
    ["10.1.2.3/32", "10.1.2.3", true],
    ["10.1.2.3/32", "10.1.2.4", false],
    ["10.1.2.3/31", "10.1.2.2", true],
    ["192.168.0.0/23", "192.168.1.200", true],
    ["192.168.0.0/23", "192.168.2.1", false],
    ["10.0.0.0/8", "::ffff:10.0.0.1", true],
    ["2001:db8::/32", "2001:db8:ffff::1", true],
    ["2001:db8::/33", "2001:db8:8000::1", false],
    ["fe80::/10", "febf::1", true],
    ["fe80::/10", "fec0::1", false],
    ["::1", "::1", true],
    ["::1", "127.0.0.1", false],
    ["127.0.0.1", "::1", false],
    ["::/0", "10.0.0.1", false],
    ["0.0.0.0/0", "::1", false],
  ];
  for (const [range, ip, expected] of cases) {
    it(`${range} ∋ ${ip}: ${expected}`, () => {
      const parsedRange = parseIpRange(range);
      const parsedIp = parseIp(ip);
      if (!parsedRange || !parsedIp) throw new Error("bad fixture");
      expect(ipInRange(parsedIp, parsedRange)).toBe(expected);
    });
  }
});
