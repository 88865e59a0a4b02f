/**
 * A small logfmt logger on stderr: `level=info msg="token issued" account=alice`. Values are quoted
 * and control characters escaped, so a client-chosen string can never forge a log line. Callers
 * pass only non-secret fields; nothing here knows how to print a password.
 */
export type LogLevel = "debug" | "info" | "warn" | "error";
type Fields = Record<string, unknown>;

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
let threshold = ORDER[(process.env.REGAUTH_LOG_LEVEL as LogLevel) ?? "info"] ?? ORDER.info;
let sink: (line: string) => void = (line) => process.stderr.write(`${line}\n`);

function formatValue(value: unknown): string {
  let text: string;
  if (value instanceof Error) text = value.message;
  else if (typeof value === "string") text = value;
  else if (value === undefined) text = "";
  else text = typeof value === "object" ? JSON.stringify(value) : String(value);
  if (/^[A-Za-z0-9_.:/@+-]+$/.test(text)) return text;
  return JSON.stringify(text).replace(
    /[\u007f-\u009f\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

function write(level: LogLevel, message: string, fields?: Fields): void {
  if (ORDER[level] < threshold) return;
  let line = `time=${new Date().toISOString()} level=${level} msg=${formatValue(message)}`;
  if (fields) for (const [key, value] of Object.entries(fields)) line += ` ${key}=${formatValue(value)}`;
  sink(line);
}

export const log = {
  debug: (message: string, fields?: Fields) => write("debug", message, fields),
  info: (message: string, fields?: Fields) => write("info", message, fields),
  warn: (message: string, fields?: Fields) => write("warn", message, fields),
  error: (message: string, fields?: Fields) => write("error", message, fields),
  setLevel(level: LogLevel): void {
    threshold = ORDER[level];
  },
  /** For tests: capture lines instead of writing them. Returns a function that restores stderr. */
  capture(lines: string[]): () => void {
    const previous = sink;
    sink = (line) => lines.push(line);
    return () => {
      sink = previous;
    };
  },
};
