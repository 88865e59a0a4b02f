/**
 * `POST ${path_prefix}/registry/events`: the registry's notifications in (issue 11 item 1;
 * docs/registry-index.md). The registry authenticates with `Authorization: Bearer <secret>`
 * (compared in constant time); the body is distribution's envelope (src/registry-index/envelope.ts).
 *
 * The registry retries anything but 2xx/3xx, and its queue for this endpoint waits meanwhile
 * (protocol_and_peers.md §C.1): a 4xx here is for what no retry can fix (401, 400, 413), a 503
 * for a busy or failing store, which a retry can. Each answer is immediate: the work is a few
 * synchronous SQLite statements per event.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { BadRequest, PayloadTooLarge } from "../errors.ts";
import { isEventsMediaType, parseEnvelope } from "../registry-index/envelope.ts";
import type { NotificationReceiver } from "../registry-index/receiver.ts";
import { isBodyTooLarge } from "./token-route.ts";

export interface RegistryEventsOptions {
  receiver: NotificationReceiver;
  /** What the registry sends after `Bearer ` (src/registry-index/secret.ts). */
  secret: string;
  /** notifications.max_body_bytes: larger bodies are refused (413) without being read past it. */
  maxBodyBytes: number;
  now?: () => number;
}

/** Handles one notification; throws AppErrors (400, 413) and store faults (503), which the app renders. */
export async function handleRegistryEvents(
  options: RegistryEventsOptions,
  request: Request,
  extraHeaders: Record<string, string>,
): Promise<Response> {
  if (!bearerMatches(request.headers.get("authorization"), options.secret))
    // Nothing is read or indexed. Not Unauthorized: that answers with a Basic challenge.
    return new Response(
      JSON.stringify({
        errors: [{ code: "UNAUTHORIZED", message: "notifications need Authorization: Bearer <secret>" }],
        error: "unauthorized",
        error_description: "notifications need Authorization: Bearer <secret>",
      }),
      {
        status: 401,
        headers: {
          "content-type": "application/json",
          "www-authenticate": 'Bearer realm="registry-events"',
          ...extraHeaders,
        },
      },
    );
  if (!isEventsMediaType(request.headers.get("content-type")))
    throw new BadRequest(
      "a notification is Content-Type application/vnd.docker.distribution.events.v1+json (or v2+json, or application/json)",
    );
  const bytes = await readAtMost(request, options.maxBodyBytes);
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw new BadRequest("body: not valid UTF-8 JSON");
  }
  const now = options.now ?? Date.now;
  const parsed = parseEnvelope(value, now());
  if (!parsed.ok) throw new BadRequest(parsed.problem);
  const result = options.receiver.receive(parsed.events);
  return new Response(JSON.stringify(result), {
    headers: { "content-type": "application/json", "cache-control": "no-store", ...extraHeaders },
  });
}

/**
 * The body, refused with 413 beyond `maxBytes`: by Content-Length before reading, and while
 * reading, so that a chunked body (no length) or a lying one is never held past the limit.
 */
async function readAtMost(request: Request, maxBytes: number): Promise<Uint8Array> {
  const tooLarge = () => new PayloadTooLarge(`a notification is at most ${maxBytes} bytes`);
  const declared = request.headers.get("content-length");
  if (declared !== null && (!/^\d{1,15}$/.test(declared) || Number(declared) > maxBytes)) throw tooLarge();
  if (!request.body) return new Uint8Array();
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        void reader.cancel().catch(() => {});
        throw tooLarge();
      }
      chunks.push(value);
    }
  } catch (error) {
    // Bun's own limit (maxRequestBodySize) refused it first: the same answer.
    if (isBodyTooLarge(error)) throw tooLarge();
    throw error;
  }
  return Buffer.concat(chunks);
}

/**
 * `Bearer <secret>` exactly: one space, nothing around it (a secret with stray whitespace is
 * another secret). Constant time whatever the lengths: both sides are hashed first.
 */
function bearerMatches(header: string | null, secret: string): boolean {
  // RFC 9110 §11.1: the scheme is case-insensitive.
  const presented = /^Bearer /i.test(header ?? "") ? (header as string).slice("Bearer ".length) : "";
  const digest = (text: string) => createHash("sha256").update(text).digest();
  return timingSafeEqual(digest(presented), digest(secret)) && presented.length > 0;
}
