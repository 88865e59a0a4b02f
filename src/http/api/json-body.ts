/**
 * Reading a management API request body: JSON only (415 otherwise), at most `maxBytes` (413,
 * decided from Content-Length before reading, and again while reading, so a client that lies or
 * streams never makes us hold more: security.md §7.3 I6), nested at most MAX_JSON_DEPTH deep,
 * and without duplicate keys (`{"admin":false,"admin":true}` would mean one thing to a proxy
 * that checks the first and another to JSON.parse, which keeps the last).
 */
import { declaredLengthExceeds, readAtMost } from "../../streams/read-at-most.ts";
import { BadRequest, PayloadTooLarge, UnsupportedMediaType } from "../../errors.ts";

export const MAX_JSON_DEPTH = 16;

export async function readJsonBody(request: Request, maxBytes: number): Promise<unknown> {
  const type = (request.headers.get("content-type") ?? "").split(";")[0]?.trim().toLowerCase();
  if (type !== "application/json")
    throw new UnsupportedMediaType("the body must be JSON: send Content-Type: application/json");
  const tooLarge = () => new PayloadTooLarge(`the body is larger than ${maxBytes} bytes`);
  if (declaredLengthExceeds(request.headers, maxBytes)) throw tooLarge();
  const bytes = await readAtMost(request.body, maxBytes, tooLarge);
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
