/**
 * The one HTML templating helper of the web interface (issue 14 item 4): a tagged template that
 * escapes every interpolated value unless it is already Html. Arrays are joined, null, undefined
 * and false render nothing, so `${cond && html`...`}` works. There is no other way to produce
 * Html than this tag and `trustedHtml`, which only the assets and the tag itself use.
 */

/** Markup that is safe to send as is: made by the `html` tag from escaped parts. */
export class Html {
  readonly #text: string;
  constructor(text: string) {
    this.#text = text;
  }
  toString(): string {
    return this.#text;
  }
}

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
  "`": "&#96;",
};

/** Text for an element's content or a quoted attribute value. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"'`]/g, (c) => ESCAPES[c] ?? c);
}

export type HtmlValue = Html | string | number | boolean | null | undefined | readonly HtmlValue[];

function render(value: HtmlValue): string {
  if (value === null || value === undefined || value === false) return "";
  if (value instanceof Html) return value.toString();
  if (Array.isArray(value)) return value.map(render).join("");
  return escapeHtml(String(value));
}

/** html`<p>${name}</p>`: every value is escaped unless it is Html. */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): Html {
  let out = strings[0] ?? "";
  for (let i = 0; i < values.length; i++) out += render(values[i] as HtmlValue) + (strings[i + 1] ?? "");
  return new Html(out);
}

/** Markup from a trusted constant (never from input). */
export function trustedHtml(text: string): Html {
  return new Html(text);
}
