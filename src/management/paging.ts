/**
 * Keyset pagination over an ordered list: the cursor is the sort key of the last item returned,
 * opaque to clients (base64url JSON), so a page stays correct while rows are added or removed.
 */
import { BadRequest } from "../errors.ts";
import type { Page, PageRequest } from "./schemas.ts";

export const DEFAULT_PAGE_LIMIT = 100;
export const MAX_PAGE_LIMIT = 500;

export function encodeCursor(key: string | number): string {
  return Buffer.from(JSON.stringify(key)).toString("base64url");
}

export function decodeCursor(cursor: string): string | number {
  try {
    const key: unknown = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
    if (typeof key === "string" || typeof key === "number") return key;
  } catch {}
  throw new BadRequest("query.cursor: not a cursor this server returned");
}

export function pageLimit(page: PageRequest): number {
  const limit = page.limit ?? DEFAULT_PAGE_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_LIMIT)
    throw new BadRequest(`query.limit: expected an integer from 1 to ${MAX_PAGE_LIMIT}`);
  return limit;
}

/** `items` sorted ascending by `keyOf` (unique keys). */
export function paginate<T, V>(
  items: readonly T[],
  keyOf: (item: T) => string | number,
  page: PageRequest,
  view: (item: T) => V,
): Page<V> {
  const limit = pageLimit(page);
  let start = 0;
  if (page.cursor !== undefined) {
    const after = decodeCursor(page.cursor);
    start = items.findIndex((item) => keyOf(item) > after);
    if (start === -1) start = items.length;
  }
  const slice = items.slice(start, start + limit);
  const last = slice.at(-1);
  const more = start + limit < items.length;
  return {
    items: slice.map(view),
    next_cursor: more && last !== undefined ? encodeCursor(keyOf(last)) : null,
  };
}
