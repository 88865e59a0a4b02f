/**
 * The http-01 answer (RFC 8555 §8.3): `GET /.well-known/acme-challenge/TOKEN` answers the key
 * authorization, on http_challenge_addr and only while an order is validated (src/acme/obtain.ts
 * opens and closes it), so port 80 is neither held nor a second way into regauth. Everything else
 * is a 404 that names the HTTPS address: regauth never serves its API over plain HTTP (issue 16).
 */
import { parseListenAddress } from "../config/load.ts";

const CHALLENGE_PATH = /^\/\.well-known\/acme-challenge\/([A-Za-z0-9_-]{1,256})$/;

/** Listens on `addr` (HOST:PORT); throws when it cannot (the port taken, no permission for :80). */
export function listenForHttpChallenges(
  addr: string,
  httpsUrl: string,
  answers: ReadonlyMap<string, string>,
): { close(): Promise<void> } {
  const address = parseListenAddress(addr);
  if (!address) throw new Error(`invalid address ${addr}`); // validated at load
  // ":80" means every address, IPv6 too: the CA validates over IPv6 when the name has an AAAA
  // record. "::" accepts both where the host has IPv6; else IPv4 only.
  const hostnames = addr.startsWith(":") ? ["::", "0.0.0.0"] : [address.hostname];
  let server: ReturnType<typeof Bun.serve> | undefined;
  let failure: unknown;
  for (const hostname of hostnames) {
    try {
      server = serveChallenges(hostname, address.port, httpsUrl, answers);
      break;
    } catch (error) {
      failure = error;
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== "EAFNOSUPPORT" && code !== "EADDRNOTAVAIL") break;
    }
  }
  if (!server) {
    const code = (failure as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE") throw new Error("the address is already in use (a web server on port 80?)");
    if (code === "EACCES")
      throw new Error("permission denied (a port below 1024 needs CAP_NET_BIND_SERVICE, or forward port 80)");
    throw failure;
  }
  const listening = server;
  return { close: async () => void (await listening.stop(true)) };
}

function serveChallenges(
  hostname: string,
  port: number,
  httpsUrl: string,
  answers: ReadonlyMap<string, string>,
): ReturnType<typeof Bun.serve> {
  return Bun.serve({
    hostname,
    port,
    reusePort: false,
    development: false,
    idleTimeout: 10,
    maxRequestBodySize: 1024,
    // Nothing below throws; should anything, a bare 500, not Bun's page.
    error: () => new Response("Internal error.\n", { status: 500 }),
    fetch(request) {
      // Bun builds request.url from the Host header: without one (HTTP/1.0), or with one that is
      // no host, it is not a URL, and new URL threw: a 500 and a stack trace in the log per request.
      const path = URL.parse(request.url)?.pathname;
      if (path === undefined)
        return new Response("Bad request.\n", {
          status: 400,
          headers: { "content-type": "text/plain; charset=utf-8" },
        });
      const token = CHALLENGE_PATH.exec(path)?.[1];
      const answer = token === undefined ? undefined : answers.get(token);
      if (request.method === "GET" && answer !== undefined)
        return new Response(answer, { headers: { "content-type": "application/octet-stream" } });
      return new Response(`Not found. regauth serves HTTPS only: ${httpsUrl}\n`, {
        status: 404,
        headers: { "content-type": "text/plain; charset=utf-8" },
      });
    },
  });
}
