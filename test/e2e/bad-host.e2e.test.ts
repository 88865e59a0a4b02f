/**
 * Requests whose Host makes Bun's request.url no URL (no Host in HTTP/1.0, an unclosed IPv6
 * literal, a space): a client's mistake, so a 400, not Bun's "Something went wrong!" 500 with a
 * stack trace in regauth's log (a route's or the error renderer's new URL(request.url) threw).
 * Found reviewing issue 16 (the ACME listener is this listener).
 */
import { describe, expect, it } from "bun:test";
import { startRegauth } from "./harness.ts";

function raw(port: number, request: string): Promise<string> {
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

describe("a Host header that is no host", async () => {
  const regauth = await startRegauth();
  const cases: [string, string][] = [
    ["an unclosed IPv6 literal, token endpoint", "GET /auth?service=registry HTTP/1.1\r\nHost: [::1\r\n"],
    ["a space, token endpoint", "GET /auth?service=registry HTTP/1.1\r\nHost: a b\r\n"],
    ["a bad escape, API", "GET /api/v1/users HTTP/1.1\r\nHost: %zz\r\n"],
    ["an unclosed IPv6 literal, unknown path", "GET /nowhere HTTP/1.1\r\nHost: [::1\r\n"],
    ["no Host, token endpoint (HTTP/1.0)", "GET /auth?service=registry HTTP/1.0\r\n"],
  ];
  for (const [name, head] of cases)
    it(`answers ${name} with a 400 and logs no stack trace`, async () => {
      const answer = await raw(regauth.port, `${head}Connection: close\r\n\r\n`);
      expect(answer).toStartWith("HTTP/1.1 400 ");
      expect(answer).not.toContain("Something went wrong");
      await Bun.sleep(50);
      expect(regauth.stderr.text).not.toContain("ERR_INVALID_URL");
      expect(regauth.stderr.text).not.toMatch(/\n\s+at /);
    });
});
