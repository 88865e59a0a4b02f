/** Basic credentials (RFC 7617) and the client address (real_ip_header / real_ip_pos). */
import { describe, expect, it } from "bun:test";
import { BadRequest } from "../../src/errors.ts";
import {
  MAX_PASSWORD_BYTES,
  MAX_USERNAME_BYTES,
  parseBasicAuthorization,
  resolveClientIp,
} from "../../src/http/request-parts.ts";

const b64 = (text: string) => Buffer.from(text).toString("base64");

function thrown(run: () => unknown): BadRequest {
  try {
    run();
  } catch (error) {
    if (error instanceof BadRequest) return error;
    throw error;
  }
  throw new Error("did not throw");
}

describe("parseBasicAuthorization", () => {
  const accepted: [string, string | null, { username: string; password: string } | null][] = [
    ["no header", null, null],
    ["user and password", `Basic ${b64("alice:pw")}`, { username: "alice", password: "pw" }],
    ["password with colons", `Basic ${b64("bob:pa:ss")}`, { username: "bob", password: "pa:ss" }],
    ["empty password", `Basic ${b64("alice:")}`, { username: "alice", password: "" }],
    ["empty user", `Basic ${b64(":pw")}`, { username: "", password: "pw" }],
    ["both empty", `Basic ${b64(":")}`, { username: "", password: "" }],
    ["lower-case scheme", `basic ${b64("a:b")}`, { username: "a", password: "b" }],
    ["upper-case scheme", `BASIC ${b64("a:b")}`, { username: "a", password: "b" }],
    ["several spaces", `Basic   ${b64("a:b")}`, { username: "a", password: "b" }],
    ["UTF-8", `Basic ${b64("jos\u00e9:p\u00e4ss")}`, { username: "jos\u00e9", password: "p\u00e4ss" }],
    ["NUL kept", `Basic ${b64("adm\u0000in:pw")}`, { username: "adm\u0000in", password: "pw" }],
  ];
  for (const [name, header, expected] of accepted) {
    it(name, () => expect(parseBasicAuthorization(header)).toEqual(expected));
  }

  const refused: [string, string][] = [
    ["not base64", "Basic !!!notbase64"],
    ["base64 with a bad length", "Basic YWxpY2U6cH"],
    ["base64url alphabet", "Basic YTpiPz8-"], // base64url of "a:b??>"
    ["no colon", `Basic ${b64("useronly")}`],
    ["empty credentials", "Basic "],
    ["scheme only", "Basic"],
    ["Bearer", "Bearer abc"],
    ["Digest", 'Digest username="a"'],
    ["two credentials", `Basic ${b64("a:b")}, Basic ${b64("c:d")}`],
    ["junk", "garbage"],
    ["overlong username", `Basic ${b64(`${"u".repeat(MAX_USERNAME_BYTES + 1)}:pw`)}`],
    ["overlong password", `Basic ${b64(`u:${"p".repeat(MAX_PASSWORD_BYTES + 1)}`)}`],
  ];
  for (const [name, header] of refused) {
    it(`refuses ${name}`, () => expect(thrown(() => parseBasicAuthorization(header)).status).toBe(400));
  }

  it("accepts the longest allowed username and password", () => {
    const username = "u".repeat(MAX_USERNAME_BYTES);
    const password = "p".repeat(MAX_PASSWORD_BYTES);
    expect(parseBasicAuthorization(`Basic ${b64(`${username}:${password}`)}`)).toEqual({
      username,
      password,
    });
  });
});

describe("resolveClientIp", () => {
  const noProxy = { header: undefined, position: 0 };
  const proxy = (position: number) => ({ header: "X-Forwarded-For", position });
  const headers = (value?: string) => new Headers(value === undefined ? {} : { "x-forwarded-for": value });

  it("uses the TCP peer without a real-IP header", () => {
    expect(resolveClientIp(headers("10.0.0.1"), "192.0.2.1", noProxy)?.text).toBe("192.0.2.1");
    expect(resolveClientIp(headers(), "::1", noProxy)?.text).toBe("::1");
    expect(resolveClientIp(headers(), undefined, noProxy)).toBeNull();
  });

  const picks: [number, string, string][] = [
    [0, "203.0.113.1, 10.0.0.2, 10.0.0.3", "203.0.113.1"],
    [1, "203.0.113.1, 10.0.0.2, 10.0.0.3", "10.0.0.2"],
    [-1, "203.0.113.1, 10.0.0.2, 10.0.0.3", "10.0.0.3"],
    [-2, "203.0.113.1, 10.0.0.2, 10.0.0.3", "10.0.0.2"],
    [-10, "203.0.113.1, 10.0.0.2", "203.0.113.1"], // clamped to 0 as in docker_auth PR #137
    [0, "  2001:db8::1  ", "2001:db8::1"],
  ];
  for (const [position, value, expected] of picks) {
    it(`pos ${position} of ${JSON.stringify(value)} → ${expected}`, () => {
      expect(resolveClientIp(headers(value), "127.0.0.1", proxy(position))?.text).toBe(expected);
    });
  }

  const refused: [string, number, string | undefined][] = [
    ["header missing", 0, undefined],
    ["header empty", 0, ""],
    ["header blank", 0, "   "],
    ["position past the end", 5, "10.0.0.1"],
    ["garbage", 0, "not-an-ip"],
    ["empty entry", 1, "10.0.0.1,,10.0.0.2"],
    ["host:port", 0, "10.0.0.1:443"],
    ["bracketed IPv6", 0, "[2001:db8::1]"],
    ["obfuscated", 0, "0x7f.1"],
  ];
  for (const [name, position, value] of refused) {
    it(`400 when ${name}`, () => {
      expect(thrown(() => resolveClientIp(headers(value), "127.0.0.1", proxy(position))).status).toBe(400);
    });
  }

  it("an unparsable TCP peer is no address, not an error", () => {
    expect(resolveClientIp(headers(), "unix-socket", noProxy)).toBeNull();
  });
});
