/**
 * Checks a request part against its TypeBox schema (src/management/schemas.ts) and reports the
 * first problem with the field's path: `body.scopes.0: expected one of pull, push, delete, api`.
 */
import { FormatRegistry, type TSchema } from "@sinclair/typebox";
import { Value, type ValueError } from "@sinclair/typebox/value";
import { BadRequest } from "../../errors.ts";

/** RFC 3339 date-time (with a zone): what the views print and what `expires_at`/`since` take. */
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/i;
if (!FormatRegistry.Has("date-time"))
  FormatRegistry.Set("date-time", (value) => RFC3339.test(value) && Number.isFinite(Date.parse(value)));

function describe(error: ValueError): string {
  const schema = error.schema as TSchema & { anyOf?: { const?: unknown }[] };
  if (schema.anyOf?.every((member) => member.const !== undefined))
    return `expected one of ${schema.anyOf.map((member) => String(member.const)).join(", ")}`;
  if (error.message === "Unexpected property") return "unknown field";
  return error.message.charAt(0).toLowerCase() + error.message.slice(1);
}

export function validated<T>(schema: TSchema, value: unknown, where: "body" | "query" | "params"): T {
  if (Value.Check(schema, value)) return value as T;
  const first = Value.Errors(schema, value).First();
  if (!first) throw new BadRequest(`${where}: invalid`);
  const path = first.path === "" ? where : `${where}${first.path.replaceAll("/", ".")}`;
  throw new BadRequest(`${path}: ${describe(first)}`);
}
