/**
 * Review (issue 11): a chunked body past notifications.max_body_bytes is answered 413 while the
 * client is still sending; the answer must reach a client that uploads first (Bun's fetch, half
 * duplex), as for the token route (test/e2e/oversized-chunked-body.e2e.test.ts).
 */
import { expect, it } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { startRegauth } from "./harness.ts";

it("a chunked notification past max_body_bytes is a 413 that arrives", async () => {
  const regauth = await startRegauth({
    configYaml: `server: {addr: "127.0.0.1:{{PORT}}"}\ntoken: {issuer: t}\nnotifications: {max_body_bytes: 4096}\n`,
  });
  const secret = readFileSync(join(regauth.dataDir, "notifications.secret"), "utf8").trim();
  const chunk = new TextEncoder().encode(" ".repeat(64 * 1024));
  let sent = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent++ < 32) controller.enqueue(chunk);
      else controller.close();
    },
  });
  const res = await fetch(`${regauth.url}/registry/events`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${secret}`,
      "content-type": "application/vnd.docker.distribution.events.v1+json",
    },
    body,
    duplex: "half",
    signal: AbortSignal.timeout(10_000),
  });
  await res.arrayBuffer();
  await regauth.stop();
  expect(res.status).toBe(413);
}, 30_000);
