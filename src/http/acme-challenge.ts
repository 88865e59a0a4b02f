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
  let server: ReturnType<typeof Bun.serve>;
  try {
    server = Bun.serve({
      hostname: address.hostname,
      port: address.port,
      reusePort: false,
      development: false,
      idleTimeout: 10,
      maxRequestBodySize: 1024,
      fetch(request) {
        const token = CHALLENGE_PATH.exec(new URL(request.url).pathname)?.[1];
        const answer = token === undefined ? undefined : answers.get(token);
        if (request.method === "GET" && answer !== undefined)
          return new Response(answer, { headers: { "content-type": "application/octet-stream" } });
        return new Response(`Not found. regauth serves HTTPS only: ${httpsUrl}\n`, {
          status: 404,
          headers: { "content-type": "text/plain; charset=utf-8" },
        });
      },
    });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE") throw new Error("the address is already in use (a web server on port 80?)");
    if (code === "EACCES")
      throw new Error("permission denied (a port below 1024 needs CAP_NET_BIND_SERVICE, or forward port 80)");
    throw error;
  }
  return { close: async () => void (await server.stop(true)) };
}
