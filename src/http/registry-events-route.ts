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
import { declaredLengthExceeds, readAtMost } from "../streams/read-at-most.ts";
import { createHash, timingSafeEqual } from "node:crypto";
import { AppError, BadRequest, PayloadTooLarge } from "../errors.ts";
import { log } from "../log.ts";
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

/** A refusal is logged at most this often per route (with the count in between). */
const REFUSAL_LOG_INTERVAL_MS = 60_000;
const refusalLogs = new WeakMap<RegistryEventsOptions, { lastMs: number; suppressed: number }>();

/**
 * Says why a notification was refused, at most once a minute: a registry with a wrong secret or
 * a block pasted with the placeholder retries for ever, and without this nothing would tell.
 * Never the secret, nor what was presented.
 */
function logRefusal(options: RegistryEventsOptions, status: number, reason: string, from: string | null) {
  const state = refusalLogs.get(options) ?? { lastMs: Number.NEGATIVE_INFINITY, suppressed: 0 };
  refusalLogs.set(options, state);
  const now = Date.now();
  if (now - state.lastMs < REFUSAL_LOG_INTERVAL_MS) {
    state.suppressed++;
    return;
  }
  log.warn("a registry notification was refused; the registry retries it", {
    status,
    reason,
    ...(from ? { from } : {}),
    ...(state.suppressed > 0 ? { suppressed: state.suppressed } : {}),
  });
  state.lastMs = now;
  state.suppressed = 0;
}

/** Handles one notification; throws AppErrors (400, 413) and store faults (503), which the app renders. */
export async function handleRegistryEvents(
  options: RegistryEventsOptions,
  request: Request,
  extraHeaders: Record<string, string>,
  /** The peer's address, for the refusal log. */
  from: string | null = null,
): Promise<Response> {
  try {
    return await answer(options, request, extraHeaders, from);
  } catch (error) {
    if (error instanceof AppError && error.status < 500)
      logRefusal(options, error.status, error.message, from);
    throw error;
  }
}

async function answer(
  options: RegistryEventsOptions,
  request: Request,
  extraHeaders: Record<string, string>,
  from: string | null,
): Promise<Response> {
  if (!bearerMatches(request.headers.get("authorization"), options.secret)) {
    logRefusal(
      options,
      401,
      request.headers.has("authorization")
        ? "wrong secret in Authorization (paste the block regauth registry-config prints)"
        : "no Authorization header (the registry's endpoint needs the headers regauth registry-config prints)",
      from,
    );
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
  }
  if (!isEventsMediaType(request.headers.get("content-type")))
    throw new BadRequest(
      "a notification is Content-Type application/vnd.docker.distribution.events.v1+json (or v2+json, or application/json)",
    );
  const bytes = await readNotification(request, options.maxBodyBytes);
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw new BadRequest("body: not valid UTF-8 JSON");
  }
  const now = options.now ?? Date.now;
  const parsed = parseEnvelope(value, now());
  if (!parsed.ok) throw new BadRequest(parsed.problem);
  const result = await options.receiver.receiveWaitingOutLocks(parsed.events);
  return new Response(JSON.stringify(result), {
    headers: { "content-type": "application/json", "cache-control": "no-store", ...extraHeaders },
  });
}

/**
 * The body, refused with 413 beyond `maxBytes`: by Content-Length before reading, and while
 * reading, so that a chunked body (no length) or a lying one is never held past the limit.
 */
async function readNotification(request: Request, maxBytes: number): Promise<Uint8Array> {
  const tooLarge = () => new PayloadTooLarge(`a notification is at most ${maxBytes} bytes`);
  if (declaredLengthExceeds(request.headers, maxBytes)) throw tooLarge();
  try {
    return await readAtMost(request.body, maxBytes, tooLarge);
  } catch (error) {
    // Bun's own limit (maxRequestBodySize) refused it first: the same answer.
    if (isBodyTooLarge(error)) throw tooLarge();
    throw error;
  }
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
