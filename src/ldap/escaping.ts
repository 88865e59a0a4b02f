/**
 * Escaping for the two places a user-typed name enters LDAP syntax, and the inverse for reading
 * DNs back. Filters follow RFC 4515 §3, DNs RFC 4514 §2.4 and §3. docker_auth uses filter escaping
 * for both (ldap_auth.go escapeAccountInput), which leaves `,` `+` `"` `;` `#` and edge spaces of a
 * DN unescaped; regauth escapes each for its own grammar.
 */

/**
 * RFC 4515 §3: in an assertion value, NUL `(` `)` `*` `\` must be written `\XX`. Escaping exactly
 * these makes the value a literal: `*` can no longer form a substring or presence filter, and
 * parentheses can no longer close the assertion and open a new one.
 */
export function escapeFilterValue(value: string): string {
  return value.replace(/[\0()*\\]/g, (c) => `\\${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

/**
 * RFC 4514 §2.4: escape `"` `+` `,` `;` `<` `>` `\` anywhere, `#` or space at the start, space at
 * the end, and NUL as `\00`. `=` is escaped too (allowed by §2.4, and it keeps `a=b` from looking
 * like a second attribute to lenient parsers).
 */
export function escapeDnValue(value: string): string {
  let escaped = value.replace(/[\0"+,;<>\\=]/g, (c) => (c === "\0" ? "\\00" : `\\${c}`));
  if (escaped.startsWith(" ") || escaped.startsWith("#")) escaped = `\\${escaped}`;
  // A one-character " " is already escaped as leading; otherwise the last raw space needs it.
  if (value.length > 1 && value.endsWith(" ")) escaped = `${escaped.slice(0, -1)}\\ `;
  return escaped;
}

/**
 * The value of the first `CN=` attribute of a DN (docker_auth's parse_cn; the type is matched
 * case-insensitively), unescaped per RFC 4514 §3; null when the DN has no CN. Used to turn
 * `memberOf: CN=Developers,OU=Groups,DC=corp` into the label value `Developers`.
 */
export function firstCommonName(dn: string): string | null {
  for (const [type, value] of dnAttributes(dn)) if (type.trim().toLowerCase() === "cn") return value;
  return null;
}

/** Splits a DN into (type, unescaped value) pairs, in order, across RDNs and multi-valued RDNs. */
function dnAttributes(dn: string): [string, string][] {
  const pairs: [string, string][] = [];
  let type = "";
  let value: number[] = [];
  let inValue = false;
  let quoted = false;
  const encoder = new TextEncoder();
  const finish = () => {
    if (inValue) pairs.push([type, new TextDecoder().decode(new Uint8Array(value)).trim()]);
    type = "";
    value = [];
    inValue = false;
  };
  for (let i = 0; i < dn.length; i++) {
    const c = dn[i] as string;
    if (!inValue) {
      if (c === "=") inValue = true;
      else if (c === "," || c === ";" || c === "+") type = "";
      else type += c;
      continue;
    }
    if (c === "\\" && i + 1 < dn.length) {
      const hex = dn.slice(i + 1, i + 3);
      if (/^[0-9a-fA-F]{2}$/.test(hex)) {
        value.push(Number.parseInt(hex, 16));
        i += 2;
      } else {
        value.push(...encoder.encode(dn[i + 1] as string));
        i += 1;
      }
    } else if (c === '"') {
      quoted = !quoted;
    } else if (!quoted && (c === "," || c === ";" || c === "+")) {
      finish();
    } else {
      value.push(...encoder.encode(c));
    }
  }
  finish();
  return pairs;
}
