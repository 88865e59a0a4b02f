/**
 * How a delivery is signed (docs/webhooks.md "Verifying a delivery"), in the style of Stripe and
 * GitHub: `X-Regauth-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
 * The timestamp is inside what is signed, so a receiver that refuses old timestamps refuses
 * replays too; the body is the exact bytes sent.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

export const SIGNATURE_HEADER = "X-Regauth-Signature";

export function signatureHex(secret: string, timestampSeconds: number, body: string): string {
  return createHmac("sha256", secret).update(`${timestampSeconds}.${body}`).digest("hex");
}

export function signatureHeader(secret: string, timestampSeconds: number, body: string): string {
  return `t=${timestampSeconds},v1=${signatureHex(secret, timestampSeconds, body)}`;
}

/**
 * What a receiver does (and the tests do): true when `header` carries a v1 signature of `body`
 * under `secret` with a timestamp at most `toleranceSeconds` from `nowSeconds`.
 */
export function verifySignature(
  secret: string,
  header: string,
  body: string,
  nowSeconds: number,
  toleranceSeconds = 300,
): boolean {
  const parts = new Map<string, string[]>();
  for (const item of header.split(",")) {
    const eq = item.indexOf("=");
    if (eq <= 0) return false;
    const key = item.slice(0, eq).trim();
    parts.set(key, [...(parts.get(key) ?? []), item.slice(eq + 1).trim()]);
  }
  const t = parts.get("t")?.[0];
  if (t === undefined || !/^\d{1,12}$/.test(t)) return false;
  if (Math.abs(nowSeconds - Number(t)) > toleranceSeconds) return false;
  const expected = Buffer.from(signatureHex(secret, Number(t), body), "hex");
  return (parts.get("v1") ?? []).some((hex) => {
    const given = Buffer.from(/^[0-9a-f]{64}$/.test(hex) ? hex : "", "hex");
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}
