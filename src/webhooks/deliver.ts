/**
 * One delivery attempt: resolve the host, refuse what the URL policy refuses, POST the signed
 * body within the timeout, read at most MAX_RESPONSE_READ_BYTES of the answer. Redirects are
 * never followed (`redirect: "manual"`): a 3xx is a failed attempt, or a webhook to an allowed
 * host could bounce regauth to a refused one.
 *
 * Pinning (DNS rebinding): the request goes to the very address that was checked, with the URL's
 * host in the Host header, so a name cannot resolve to a public address for the check and to
 * 127.0.0.1 for the connection. For https the name goes to TLS as `tls.serverName` (SNI and the
 * certificate check, Bun's fetch honours it): a second lookup by fetch would otherwise let a
 * rebound name reach a private address, and its errors (refused, bad certificate, timeout)
 * would tell which private ports are open, even though the certificate check stops the request.
 */
import { isIP } from "node:net";
import { parseIp } from "../ip.ts";
import type { IpRange } from "../ip.ts";
import { signatureHeader, SIGNATURE_HEADER } from "./signing.ts";
import { hostOf, redactUrl, refusalOf, refusedReason } from "./url-policy.ts";

export const MAX_RESPONSE_READ_BYTES = 4096;
export const RESPONSE_EXCERPT_CHARS = 256;

export interface AttemptInput {
  url: string;
  body: string;
  secret: string;
  eventType: string;
  eventId: string;
  deliveryId: number;
  attempt: number;
  timeoutMs: number;
  allowed: readonly IpRange[];
  userAgent: string;
  nowMs: () => number;
  /** DNS: the addresses of a host name. */
  resolve?: (host: string) => Promise<string[]>;
  fetch?: typeof fetch;
}

export type AttemptOutcome =
  | { kind: "delivered"; status: number; latencyMs: number; excerpt: string }
  /** Retried later (unless attempts are used up). */
  | { kind: "failed"; error: string; status: number | null; latencyMs: number | null; excerpt: string | null }
  /** Never retried: the URL's addresses are refused by the policy. */
  | { kind: "refused"; error: string };

/**
 * A value fit for a header: the event id comes from the registry's notification (any string up
 * to 256 characters), and fetch throws on CR, LF or non-Latin-1, which would fail the delivery
 * on every attempt. Anything outside printable ASCII is percent-encoded (`%` itself too, so the
 * encoding can be undone); the payload's `id` carries it unchanged.
 */
export function headerSafe(value: string): string {
  // A lone surrogate would make encodeURIComponent throw: U+FFFD instead (String#toWellFormed).
  const wellFormed = value.replace(
    /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g,
    "\ufffd",
  );
  return wellFormed.replace(/[^\x20-\x24\x26-\x7e]+/g, (run) => encodeURIComponent(run));
}

async function resolveHost(host: string): Promise<string[]> {
  const answers = await Bun.dns.lookup(host, {});
  return answers.map((answer) => answer.address);
}

/** A short, printable excerpt of an answer (no control characters, at most RESPONSE_EXCERPT_CHARS). */
export function excerptOf(bytes: Uint8Array): string {
  const text = new TextDecoder("utf-8", { fatal: false }).decode(bytes);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping them is the point
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, "?").slice(0, RESPONSE_EXCERPT_CHARS);
}

/**
 * Reads at most `limit` bytes of the body, then cancels the rest (a huge answer costs nothing).
 * Bounded by `signal` too: fetch's signal does not stop a body that trickles or never ends.
 */
async function readCapped(response: Response, limit: number, signal: AbortSignal): Promise<Uint8Array> {
  const reader = response.body?.getReader();
  if (!reader) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let total = 0;
  let onAbort = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason ?? new DOMException("timed out", "TimeoutError"));
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
  });
  aborted.catch(() => {});
  try {
    while (total < limit) {
      const { done, value } = await Promise.race([reader.read(), aborted]);
      if (done) break;
      chunks.push(value);
      total += value.byteLength;
    }
  } catch (error) {
    // Out of time: the status has come, and what was read is the excerpt.
    if (!signal.aborted) throw error;
  } finally {
    signal.removeEventListener("abort", onAbort);
    void reader.cancel().catch(() => {});
  }
  return Buffer.concat(chunks).subarray(0, limit);
}

/** `promise`, or a rejection with the signal's reason once it aborts (a lookup has no signal). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason ?? new DOMException("timed out", "TimeoutError"));
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

export async function attemptDelivery(input: AttemptInput): Promise<AttemptOutcome> {
  // One deadline for the whole attempt, DNS included: a name server that never answers must not
  // hold a dispatcher slot (and serve's stop) past timeout_seconds.
  const signal = AbortSignal.timeout(input.timeoutMs);
  const url = new URL(input.url);
  const host = hostOf(url);
  let addresses: string[];
  if (parseIp(host)) {
    addresses = [host];
  } else {
    try {
      addresses = await untilAborted((input.resolve ?? resolveHost)(host), signal);
    } catch (error) {
      return {
        kind: "failed",
        error: `cannot resolve ${host}: ${signal.aborted ? `no answer within ${input.timeoutMs / 1000} s` : (error as Error).message}`,
        status: null,
        latencyMs: null,
        excerpt: null,
      };
    }
    if (addresses.length === 0)
      return {
        kind: "failed",
        error: `${host} has no address`,
        status: null,
        latencyMs: null,
        excerpt: null,
      };
  }
  // Every address must pass: a name with one public and one private answer is refused.
  for (const address of addresses) {
    const ip = parseIp(address);
    const refusal = ip ? refusalOf(ip, input.allowed) : { rule: "not an IP address" };
    if (refusal)
      return {
        kind: "refused",
        error: `${host === address ? "" : `${host} resolves to ${address}: `}${refusedReason(address, refusal)}`,
      };
  }
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "user-agent": input.userAgent,
    "x-regauth-event": headerSafe(input.eventType),
    "x-regauth-event-id": headerSafe(input.eventId),
    "x-regauth-delivery": String(input.deliveryId),
    "x-regauth-attempt": String(input.attempt),
  };
  if (url.username !== "" || url.password !== "") {
    headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString("base64")}`;
    url.username = "";
    url.password = "";
  }
  // Connect to a checked address; the receiver still sees its own name in Host (and SNI). When
  // one cannot be reached (a dual-stack name whose IPv6 answer has no route here), the next one
  // is tried, within the same attempt's time.
  headers.host = url.host;
  const tls = url.protocol === "https:" && !parseIp(host) ? { tls: { serverName: host } } : {};
  const timestampSeconds = Math.floor(input.nowMs() / 1000);
  headers[SIGNATURE_HEADER.toLowerCase()] = signatureHeader(input.secret, timestampSeconds, input.body);
  const started = performance.now();
  let response: Response | undefined;
  let connectError: unknown;
  for (const address of addresses) {
    const pinned = new URL(url.href);
    pinned.hostname = isIP(address) === 6 ? `[${address}]` : address;
    try {
      response = await (input.fetch ?? fetch)(pinned.href, {
        method: "POST",
        headers,
        body: input.body,
        redirect: "manual",
        signal,
        ...tls,
      });
      break;
    } catch (error) {
      connectError = error;
      if (signal.aborted) break;
    }
  }
  if (response === undefined)
    return {
      kind: "failed",
      error: describeFetchError(connectError, input.timeoutMs),
      status: null,
      latencyMs: Math.round(performance.now() - started),
      excerpt: null,
    };
  let excerpt = "";
  try {
    excerpt = excerptOf(await readCapped(response, MAX_RESPONSE_READ_BYTES, signal));
  } catch (error) {
    // The status came; a body cut off by the timeout is no reason to call a 2xx failed.
    if (!(response.status >= 200 && response.status < 300))
      return {
        kind: "failed",
        error: describeFetchError(error, input.timeoutMs),
        status: response.status,
        latencyMs: Math.round(performance.now() - started),
        excerpt: null,
      };
  }
  const latencyMs = Math.round(performance.now() - started);
  if (response.status >= 200 && response.status < 300)
    return { kind: "delivered", status: response.status, latencyMs, excerpt };
  const error =
    response.status >= 300 && response.status < 400
      ? `redirect ${response.status} to ${JSON.stringify(locationOf(response, url))} not followed`
      : `HTTP ${response.status}`;
  return { kind: "failed", error, status: response.status, latencyMs, excerpt };
}

/** Where a redirect pointed, for the history: credentials redacted, at most 200 characters. */
function locationOf(response: Response, base: URL): string {
  const location = response.headers.get("location") ?? "";
  try {
    return redactUrl(new URL(location, base).href).slice(0, 200);
  } catch {
    return "(not a URL)";
  }
}

function describeFetchError(error: unknown, timeoutMs: number): string {
  const name = (error as Error | undefined)?.name;
  if (name === "TimeoutError" || name === "AbortError") return `no answer within ${timeoutMs / 1000} s`;
  const code = (error as { code?: unknown } | undefined)?.code;
  // Bun names the URL in some errors (`ERR_TLS_CERT_ALTNAME_INVALID fetching "https://..."`): its
  // path or query may be the receiver's token (chat webhooks), and this goes to the history and
  // the log. The hint about `verbose: true` means nothing to whoever reads them.
  const message = ((error as Error | undefined)?.message ?? String(error))
    .replace(/ fetching "[^"]*"\.?/g, "")
    .replace(/\s*For more information, pass `verbose: true`.*$/s, "")
    .trim();
  return typeof code === "string" && !message.includes(code) ? `${code}: ${message}` : message;
}
