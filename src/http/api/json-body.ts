/**
 * Reading a management API request body: JSON only (415 otherwise), at most `maxBytes` (413,
 * decided from Content-Length before reading, and again while reading, so a client that lies or
 * streams never makes us hold more: security.md §7.3 I6), nested at most MAX_JSON_DEPTH deep,
 * and without duplicate keys (`{"admin":false,"admin":true}` would mean one thing to a proxy
 * that checks the first and another to JSON.parse, which keeps the last).
 */
import { BadRequest, PayloadTooLarge, UnsupportedMediaType } from "../../errors.ts";

export const MAX_JSON_DEPTH = 16;

export async function readJsonBody(request: Request, maxBytes: number): Promise<unknown> {
  const type = (request.headers.get("content-type") ?? "").split(";")[0]?.trim().toLowerCase();
  if (type !== "application/json")
    throw new UnsupportedMediaType("the body must be JSON: send Content-Type: application/json");
  const declared = request.headers.get("content-length");
  if (declared !== null && (!/^\d{1,15}$/.test(declared) || Number(declared) > maxBytes))
    throw new PayloadTooLarge(`the body is larger than ${maxBytes} bytes`);
  const bytes = await readAtMost(request, maxBytes);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new BadRequest("body: not UTF-8");
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new BadRequest("body: not valid JSON");
  }
  checkStructure(text);
  return value;
}

async function readAtMost(request: Request, maxBytes: number): Promise<Uint8Array> {
  if (!request.body) return new Uint8Array();
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      void reader.cancel().catch(() => {});
      throw new PayloadTooLarge(`the body is larger than ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

/** Duplicate keys and depth, on text JSON.parse already accepted (so it is well formed). */
function checkStructure(text: string): void {
  const stack: { keys: Set<string> | null; expectKey: boolean }[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      const top = stack.at(-1);
      if (top?.keys && top.expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.keys.has(key)) throw new BadRequest(`body: duplicate key ${JSON.stringify(key)}`);
        top.keys.add(key);
        top.expectKey = false;
      }
      i = j;
    } else if (c === "{" || c === "[") {
      if (stack.length >= MAX_JSON_DEPTH)
        throw new BadRequest(`body: nested deeper than ${MAX_JSON_DEPTH} levels`);
      stack.push({ keys: c === "{" ? new Set() : null, expectKey: c === "{" });
    } else if (c === "}" || c === "]") {
      stack.pop();
    } else if (c === ",") {
      const top = stack.at(-1);
      if (top?.keys) top.expectKey = true;
    }
  }
}
