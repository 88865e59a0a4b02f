/**
 * Reads a server's stderr as journald would, so that the benchmarks measure a server whose log
 * is read (an unread pipe makes it drop lines, src/log.ts LogBacklog), keeping only the end of
 * it: enough for an error message, without a copy of every token line in the bench's memory.
 */
export function drainOutput(
  stream: ReadableStream<Uint8Array>,
  keepLastChars = 256 * 1024,
): { text: string } {
  const out = { text: "" };
  void (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      out.text += decoder.decode(chunk, { stream: true });
      if (out.text.length > 2 * keepLastChars) out.text = out.text.slice(-keepLastChars);
    }
  })();
  return out;
}
