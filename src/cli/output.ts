/**
 * How commands print: readable tables by default, `--output json` for scripts (the views as the
 * API returns them, so a script reads the same JSON offline and remote).
 */
import { type ParsedArgs, stringFlag, UsageError } from "./args.ts";

export type OutputFormat = "table" | "json";

export function outputFormat(args: ParsedArgs): OutputFormat {
  const value = stringFlag(args, "output") ?? "table";
  if (value !== "table" && value !== "json")
    throw new UsageError(`--output must be table or json, not ${JSON.stringify(value)}`);
  return value;
}

export function table(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  return (
    all
      .map((r) =>
        r
          .map((cell, i) => cell.padEnd(widths[i] ?? 0))
          .join("  ")
          .trimEnd(),
      )
      .join("\n") + "\n"
  );
}

export function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/** An RFC 3339 time of a view as the tables show it: to the second, UTC; null is "never". */
export function shortTime(time: string | null): string {
  if (time === null) return "never";
  const date = new Date(time);
  return Number.isNaN(date.getTime()) ? time : date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** Cells from a server are text for a terminal: no control characters (escape sequences). */
export function cell(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping them is the point
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, "?");
}
