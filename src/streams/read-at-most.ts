/**
 * Reading a body of unknown size with a bound: requests to us (the API, the pages, the
 * registry's notifications) and answers we fetch (the registry when crawling, a regauth server
 * for the remote CLI). A chunked body, or one whose Content-Length lies, is never held past the
 * bound: reading stops and the stream is cancelled as soon as it is crossed.
 */

/** Whether a Content-Length header already says the body is too large (or is not a length at all). */
export function declaredLengthExceeds(headers: Headers, maxBytes: number): boolean {
  const declared = headers.get("content-length");
  return declared !== null && (!/^\d{1,15}$/.test(declared) || Number(declared) > maxBytes);
}

/**
 * The whole body, or `tooLarge()` thrown once more than `maxBytes` have come; the stream is then
 * cancelled. A request's answer to that must end its connection (`Connection: close`, src/http/app.ts
 * renderError): a client still writing the rest would otherwise wait on it.
 */
export async function readAtMost(
  body: ReadableStream<Uint8Array> | null,
  maxBytes: number,
  tooLarge: () => Error,
): Promise<Buffer> {
  if (!body) return Buffer.alloc(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
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
  return Buffer.concat(chunks);
}
