/** checkCanListen: the probe serve runs before creating anything (issue 12 item 7). */
import { describe, expect, it } from "bun:test";
import { createServer } from "node:net";
import { checkCanListen, ListenError } from "../../src/server.ts";
import { freePort } from "../e2e/free-port.ts";

const server = (addr: string, net: "tcp" | "unix" = "tcp") => ({
  addr,
  net,
  path_prefix: "",
  real_ip_pos: 0,
  hsts: false,
});

describe("checkCanListen", () => {
  it("passes for a free port and leaves it free for the real listen", async () => {
    const port = await freePort();
    checkCanListen(server(`127.0.0.1:${port}`));
    const after = createServer();
    await new Promise<void>((resolve, reject) => {
      after.once("error", reject);
      after.listen(port, "127.0.0.1", resolve);
    });
    await new Promise((resolve) => after.close(resolve));
  });

  it("passes for a unix socket path without touching it (listen removes a stale socket)", () => {
    expect(() => checkCanListen(server("/nonexistent/dir/regauth.sock", "unix"))).not.toThrow();
  });

  it("names the address and the way out when the port is taken", async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      let thrown: unknown;
      try {
        checkCanListen(server(`127.0.0.1:${port}`));
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(ListenError);
      expect((thrown as Error).message).toBe(
        `cannot listen on 127.0.0.1:${port}: the address is already in use (another regauth, or another program). Choose another with --addr HOST:PORT (or REGAUTH_ADDR, or server.addr in the config file)`,
      );
    } finally {
      taken.close();
    }
  });

  it("says so when the host part is not an address of this machine", () => {
    // 192.0.2.1 is TEST-NET-1 (RFC 5737), never assigned to a real interface.
    expect(() => checkCanListen(server("192.0.2.1:5001"))).toThrow("that is not an address of this host");
  });
});

describe("checkCanListen with server.letsencrypt (the port lock, src/acme/port-lock.ts)", () => {
  const acme = (addr: string) =>
    ({
      ...server(addr),
      letsencrypt: { host: "a.example", directory_url: "https://x/", http_challenge_addr: ":80" },
    }) as Parameters<typeof checkCanListen>[0];

  it("holds the port: a second check in this process is told the address is in use", async () => {
    const port = await freePort();
    checkCanListen(acme(`127.0.0.1:${port}`));
    expect(() => checkCanListen(acme(`127.0.0.1:${port}`))).toThrow(
      /cannot listen on 127\.0\.0\.1:\d+: the address is already in use \(another regauth holds this port/,
    );
  });
});
