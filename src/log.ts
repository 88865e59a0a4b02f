/**
 * A small logger on stderr, one line per event: logfmt (`level=info msg="token issued"
 * account=alice`) or JSON (`log.format: json`, one object a line). Values are quoted and control
 * characters escaped, so a client-chosen string can never forge a log line. Callers pass only
 * non-secret fields; nothing here knows how to print a password.
 *
 * The level is $REGAUTH_LOG_LEVEL when set, else `log.level` from the config, else info: the
 * variable wins so that `systemctl edit` (Environment=REGAUTH_LOG_LEVEL=debug) turns on debug for
 * one run without touching the config (docs/deployment.md, Logs).
 */
export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFormat = "logfmt" | "json";
type Fields = Record<string, unknown>;

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
function environmentLevel(): LogLevel | undefined {
  const value = process.env.REGAUTH_LOG_LEVEL?.toLowerCase();
  return value !== undefined && Object.hasOwn(ORDER, value) ? (value as LogLevel) : undefined;
}
let threshold = ORDER[environmentLevel() ?? "info"];
let format: LogFormat = "logfmt";

/**
 * How much log output may wait for stderr's reader. Bun keeps what a pipe cannot take yet in
 * memory, without bound: a reader that stalls (journald busy, `serve 2>&1 | less` left paused, a
 * supervisor that never reads) would otherwise grow the server by every line of a token a second
 * at info. Measured under the bench's load with an unread pipe: peak RSS 105 MiB against 89 with
 * stderr on a file. Past the limit, lines are dropped and counted, and the count is logged once
 * the reader has caught up: the server neither blocks nor grows. The audit log (in the database)
 * does not go through here.
 */
export const LOG_BACKLOG_LIMIT_BYTES = 2 ** 20;

export class LogBacklog {
  private backlogBytes = 0;
  /** Lines dropped since the last notice. */
  droppedLines = 0;

  constructor(
    /** Hands text to stderr; `done` runs once its reader has taken it. */
    private readonly writeText: (text: string, done: () => void) => void,
    private readonly limitBytes = LOG_BACKLOG_LIMIT_BYTES,
    private readonly onDropped: (droppedLines: number) => void = (droppedLines) =>
      write("warn", "log lines dropped: stderr was not read fast enough", {
        dropped_lines: droppedLines,
        limit_bytes: LOG_BACKLOG_LIMIT_BYTES,
      }),
  ) {}

  write(line: string): void {
    if (this.backlogBytes > this.limitBytes) {
      this.droppedLines++;
      return;
    }
    const text = `${line}\n`;
    const bytes = Buffer.byteLength(text);
    this.backlogBytes += bytes;
    this.writeText(text, () => {
      this.backlogBytes -= bytes;
      // Half the limit: the notice is not itself dropped, and lines flow before it is sent again.
      if (this.droppedLines > 0 && this.backlogBytes <= this.limitBytes / 2) {
        const droppedLines = this.droppedLines;
        this.droppedLines = 0;
        this.onDropped(droppedLines);
      }
    });
  }
}

const stderrBacklog = new LogBacklog((text, done) => {
  process.stderr.write(text, () => done());
});
let sink: (line: string) => void = (line) => stderrBacklog.write(line);

/**
 * Compiled once: a regular expression literal is a new object each time it is evaluated, and a
 * flood of failed logins logs thousands of lines a second (issue 9 item 6).
 */
const BARE_VALUE = /^[A-Za-z0-9_.:/@+-]+$/;
const TROUBLESOME_CHARACTERS = /[\u007f-\u009f\u2028\u2029]/g;
const escapeCharacter = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;

function formatValue(value: unknown): string {
  let text: string;
  if (value instanceof Error) text = value.message;
  else if (typeof value === "string") text = value;
  else if (value === undefined) text = "";
  else text = typeof value === "object" ? JSON.stringify(value) : String(value);
  if (BARE_VALUE.test(text)) return text;
  return JSON.stringify(text).replace(TROUBLESOME_CHARACTERS, escapeCharacter);
}

function jsonValue(value: unknown): unknown {
  return value instanceof Error ? value.message : value;
}

/** C1 controls and U+2028/2029 are valid in JSON strings but trouble terminals and readers: escaped, as in logfmt. */
function jsonLine(level: LogLevel, message: string, fields?: Fields): string {
  const record: Record<string, unknown> = { time: new Date().toISOString(), level, msg: message };
  if (fields)
    for (const [key, value] of Object.entries(fields))
      if (value !== undefined && !Object.hasOwn(record, key)) record[key] = jsonValue(value);
  return JSON.stringify(record).replace(TROUBLESOME_CHARACTERS, escapeCharacter);
}

/** Fields every line of this process ends with: a worker's id (issue 17, src/serve/). */
let processFields: Fields | undefined;

function write(level: LogLevel, message: string, ownFields?: Fields): void {
  if (ORDER[level] < threshold) return;
  if (format === "json") {
    sink(jsonLine(level, message, processFields ? { ...ownFields, ...processFields } : ownFields));
    return;
  }
  let line = `time=${new Date().toISOString()} level=${level} msg=${formatValue(message)}`;
  // for...in, not Object.entries: no array per field (fields are object literals, no inherited
  // keys); the process's fields come last and win over a line's own, without a merged object
  // per line (a worker logs a line per token).
  if (ownFields)
    for (const key in ownFields)
      if (!processFields || !Object.hasOwn(processFields, key))
        line += ` ${key}=${formatValue(ownFields[key])}`;
  if (processFields) for (const key in processFields) line += ` ${key}=${formatValue(processFields[key])}`;
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
  /** The config's `log` section; $REGAUTH_LOG_LEVEL, when set, still decides the level. */
  configure(settings: { level: LogLevel; format: LogFormat }): void {
    threshold = ORDER[environmentLevel() ?? settings.level];
    format = settings.format;
  },
  /** Adds `fields` to every line from now on (a worker's `worker=N`). */
  tagProcess(fields: Fields): void {
    processFields = fields;
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
