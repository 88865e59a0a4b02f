import { describe, expect, it } from "bun:test";
import { escapeHtml, Html, html, trustedHtml } from "../../src/web/html.ts";

describe("html", () => {
  const cases: { name: string; got: () => Html; want: string }[] = [
    {
      name: "escapes a script tag in text",
      got: () => html`<p>${"<script>alert(1)</script>"}</p>`,
      want: "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>",
    },
    {
      name: "escapes quotes in an attribute",
      got: () => html`<input value="${`" onfocus="x`}">`,
      want: '<input value="&quot; onfocus=&quot;x">',
    },
    { name: "escapes single quotes and backticks", got: () => html`${"'`"}`, want: "&#39;&#96;" },
    { name: "escapes an ampersand once", got: () => html`${"&amp;"}`, want: "&amp;amp;" },
    {
      name: "keeps nested Html as is",
      got: () => html`<div>${html`<b>${"<i>"}</b>`}</div>`,
      want: "<div><b>&lt;i&gt;</b></div>",
    },
    {
      name: "joins arrays, escaping each item",
      got: () => html`<ul>${["<a>", html`<li>x</li>`]}</ul>`,
      want: "<ul>&lt;a&gt;<li>x</li></ul>",
    },
    {
      name: "renders nothing for null, undefined and false",
      got: () => html`${null}${undefined}${false}|`,
      want: "|",
    },
    { name: "renders numbers and true as text", got: () => html`${42} ${true}`, want: "42 true" },
    { name: "keeps trusted constants", got: () => html`${trustedHtml("<hr>")}`, want: "<hr>" },
    {
      name: "does not trust an object that only looks like Html",
      got: () => html`${{ toString: () => "<x>" } as unknown as string}`,
      want: "&lt;x&gt;",
    },
  ];
  for (const c of cases) it(c.name, () => expect(c.got().toString()).toBe(c.want));

  it("escapes every character that can end a text or attribute context", () => {
    expect(escapeHtml(`<>&"'\``)).toBe("&lt;&gt;&amp;&quot;&#39;&#96;");
  });
});
