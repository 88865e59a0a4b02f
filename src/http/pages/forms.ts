/**
 * Form bodies of the web interface: `application/x-www-form-urlencoded` only, bounded in size,
 * closed field sets (an unknown or repeated field is refused, as the API refuses unknown JSON
 * keys), and the mapping of a domain error to the field that caused it.
 */
import { declaredLengthExceeds, readAtMost } from "../../streams/read-at-most.ts";
import { AppError, BadRequest, PayloadTooLarge, UnsupportedMediaType } from "../../errors.ts";

/** Every form of the interface fits in far less; a bigger body is refused unread. */
export const MAX_FORM_BYTES = 65_536;

export type FormErrors = Record<string, string>;

/** Reads and parses a form body, or throws 413/415/400. */
export async function readForm(request: Request): Promise<URLSearchParams> {
  const tooLarge = () => new PayloadTooLarge(`the form is larger than ${MAX_FORM_BYTES} bytes`);
  if (declaredLengthExceeds(request.headers, MAX_FORM_BYTES)) throw tooLarge();
  const type = (request.headers.get("content-type") ?? "").split(";")[0]?.trim().toLowerCase();
  if (type !== "application/x-www-form-urlencoded")
    throw new UnsupportedMediaType("send the form as application/x-www-form-urlencoded");
  const bytes = await readAtMost(request.body, MAX_FORM_BYTES, tooLarge);
  const text = new TextDecoder("utf-8", { fatal: false }).decode(bytes);
  return new URLSearchParams(text);
}

/**
 * The form's fields as single strings; `multi` fields as arrays. Throws BadRequest naming an
 * unknown field or a single field given twice (`csrf` is always allowed and dropped).
 */
export function formFields(
  form: URLSearchParams,
  single: readonly string[],
  multi: readonly string[] = [],
): { one: Record<string, string>; many: Record<string, string[]> } {
  const one: Record<string, string> = {};
  const many: Record<string, string[]> = Object.fromEntries(multi.map((name) => [name, []]));
  for (const [key, value] of form) {
    if (key === "csrf") continue;
    if (multi.includes(key)) many[key]?.push(value);
    else if (single.includes(key)) {
      if (Object.hasOwn(one, key)) throw new BadRequest(`${key}: given more than once`);
      one[key] = value;
    } else throw new BadRequest(`${key.slice(0, 64)}: unknown field`);
  }
  return { one, many };
}

/**
 * Which form field an error is about: the API's validation names it (`body.name: ...`), domain
 * messages name it in words ("invalid user name", "the password must ..."). Else `fallback`.
 */
export function errorField(error: AppError, fields: Record<string, string>, fallback: string): string {
  const path = /^(?:body|query|params)\.([a-z_]+)/.exec(error.message)?.[1];
  if (path !== undefined) return fields[path] ?? (Object.values(fields).includes(path) ? path : fallback);
  if (/^[a-z_]+: /.test(error.message)) {
    const key = error.message.slice(0, error.message.indexOf(":"));
    if (Object.values(fields).includes(key)) return key;
  }
  for (const [word, field] of Object.entries(fields))
    if (error.message.toLowerCase().includes(word.replaceAll("_", " "))) return field;
  return fallback;
}

/** A client's mistake worth showing next to a field; anything else is rethrown. */
export function asFormError(error: unknown): AppError {
  if (error instanceof AppError && error.status < 500) return error;
  throw error;
}
