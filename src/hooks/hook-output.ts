/**
 * What hooks print on stdout when they exit 0, checked strictly: a program that meant to grant
 * less (a typo in a key, a stray debug line) must not end up granting more. Anything unusable is
 * reported as a problem, which the hooks turn into a denial and a log line.
 */
import type { Labels } from "../acl.ts";

/** ext_auth's stdout on exit 0: nothing, or a JSON object whose `labels` maps keys to string lists. */
export function parseLabelsOutput(stdout: Uint8Array): { labels: Labels } | { problem: string } {
  const parsed = parseJsonOutput(stdout);
  if ("problem" in parsed) return parsed;
  if (parsed.value === undefined) return { labels: {} };
  const { value } = parsed;
  if (!isPlainObject(value)) return { problem: "stdout is not a JSON object" };
  const labels = value.labels;
  if (labels === undefined) return { labels: {} };
  if (!isPlainObject(labels)) return { problem: '"labels" is not an object' };
  for (const [name, values] of Object.entries(labels)) {
    if (!Array.isArray(values) || !values.every((v) => typeof v === "string"))
      return { problem: `label ${JSON.stringify(name).slice(0, 60)} is not a list of strings` };
  }
  // fromEntries defines own properties: a label named "__proto__" stays a label.
  return { labels: Object.fromEntries(Object.entries(labels)) as Labels };
}

/** Strict UTF-8, then JSON. Empty (or blank) output is `undefined`, not an error. */
export function parseJsonOutput(stdout: Uint8Array): { value: unknown } | { problem: string } {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(stdout);
  } catch {
    return { problem: "stdout is not UTF-8" };
  }
  if (text.trim() === "") return { value: undefined };
  try {
    return { value: JSON.parse(text) };
  } catch {
    return { problem: "stdout is not JSON" };
  }
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** ext_authz's stdout on exit 0: nothing (all requested actions), or `{"actions": [...]}`. */
export function parseActionsOutput(
  stdout: Uint8Array,
): { actions: string[] | "all-requested" } | { problem: string } {
  const parsed = parseJsonOutput(stdout);
  if ("problem" in parsed) return parsed;
  if (parsed.value === undefined) return { actions: "all-requested" };
  const { value } = parsed;
  if (!isPlainObject(value)) return { problem: "stdout is not a JSON object" };
  const actions = value.actions;
  if (!Array.isArray(actions) || !actions.every((a) => typeof a === "string"))
    return { problem: '"actions" is missing or not a list of strings' };
  return { actions };
}
