/**
 * The http-01 listener (RFC 8555 §8.3; src/http/acme-challenge.ts): the key authorization for a
 * known token and nothing else, on loopback ports of its own.
 */
import { afterAll, describe, expect, it } from "bun:test";
import { listenForHttpChallenges } from "../../src/http/acme-challenge.ts";
import { freePort } from "../e2e/free-port.ts";

describe("the http-01 listener", async () => {
  const port = await freePort();
  const answers = new Map([["tok-EN_1", "tok-EN_1.thumbprint"]]);
  const listener = listenForHttpChallenges(`127.0.0.1:${port}`, "https://auth.example.org/", answers);
  afterAll(() => listener.close());
  const base = `http://127.0.0.1:${port}`;

  it("answers a known token with its key authorization", async () => {
    const response = await fetch(`${base}/.well-known/acme-challenge/tok-EN_1`);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe("tok-EN_1.thumbprint");
  });

  const refused: [string, string, RequestInit?][] = [
    ["an unknown token", "/.well-known/acme-challenge/other"],
    ["a token with a dot", "/.well-known/acme-challenge/tok-EN_1.x"],
    ["a path below a token", "/.well-known/acme-challenge/tok-EN_1/x"],
    ["an encoded traversal", "/.well-known/acme-challenge/%2e%2e%2ftok-EN_1"],
    ["the token endpoint", "/auth?service=registry"],
    ["the API", "/api/v1/users"],
    ["a POST to a known token", "/.well-known/acme-challenge/tok-EN_1", { method: "POST", body: "x" }],
  ];
  for (const [name, path, init] of refused)
    it(`refuses ${name} with a 404 that names the HTTPS address`, async () => {
      const response = await fetch(`${base}${path}`, init);
      expect(response.status).toBe(404);
      expect(await response.text()).toContain("regauth serves HTTPS only: https://auth.example.org/");
    });

  /** One raw HTTP/1.x exchange: what fetch cannot send (no Host, a Host that is no host). */
  function raw(request: string): Promise<string> {
    return new Promise((resolve) => {
      let answer = "";
      void Bun.connect({
        hostname: "127.0.0.1",
        port,
        socket: {
          open: (socket) => void socket.write(request),
          data: (_socket, data) => void (answer += data.toString()),
          close: () => resolve(answer),
          error: () => resolve(answer),
        },
      });
    });
  }

  const hostile: [string, string][] = [
    ["no Host (HTTP/1.0)", "GET /.well-known/acme-challenge/tok-EN_1 HTTP/1.0\r\n\r\n"],
    ["a Host with a space and markup", "GET / HTTP/1.1\r\nHost: a b<script>\r\nConnection: close\r\n\r\n"],
    ["an unclosed IPv6 Host", "GET / HTTP/1.1\r\nHost: [::1\r\nConnection: close\r\n\r\n"],
    ["a Host with a bad escape", "GET / HTTP/1.1\r\nHost: %zz\r\nConnection: close\r\n\r\n"],
  ];
  for (const [name, request] of hostile)
    it(`answers ${name} with a 400, not a 500, and echoes nothing`, async () => {
      const answer = await raw(request);
      expect(answer).toStartWith("HTTP/1.1 400 ");
      expect(answer).not.toContain("<script>");
      expect(answer).not.toContain("at ");
    });

  it("says so when the port is taken", () => {
    expect(() => listenForHttpChallenges(`127.0.0.1:${port}`, "https://x/", answers)).toThrow(
      /already in use/,
    );
  });

  it("listens on IPv6 and IPv4 for an address without a host", async () => {
    const open = await freePort();
    const both = listenForHttpChallenges(`:${open}`, "https://x/", answers);
    try {
      for (const host of ["127.0.0.1", "[::1]"]) {
        const response = await fetch(`http://${host}:${open}/.well-known/acme-challenge/tok-EN_1`);
        expect(await response.text()).toBe("tok-EN_1.thumbprint");
      }
    } finally {
      await both.close();
    }
  });
});
