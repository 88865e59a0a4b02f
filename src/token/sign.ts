/**
 * Registry tokens (distribution docs/spec/auth/jwt.md). The header is fixed per key and encoded
 * once; per token we encode only the claims and sign, which keeps the hot path short.
 */
import { randomUUID, sign } from "node:crypto";
import type { SigningKey } from "./keys.ts";

/** One `access` entry of the token: what the registry lets the bearer do to one resource. */
export interface Grant {
  type: string;
  class?: string;
  name: string;
  actions: string[];
}

export interface TokenClaimsInput {
  issuer: string;
  /** The account; "" for anonymous (jwt.md). */
  subject: string;
  /** The requested service; a string, because registry 2.8 cannot decode an array `aud`. */
  audience: string;
  access: Grant[];
  issuedAtSeconds: number;
  ttlSeconds: number;
}

/**
 * Not-before is backdated so that a registry whose clock runs a little behind ours still accepts
 * a fresh token; the registry adds its own 60 s leeway on top (registry/auth/token/token.go).
 */
const NOT_BEFORE_SLACK_SECONDS = 30;

/** Signs a token; returns the compact JWS. */
export function signRegistryToken(key: SigningKey, claims: TokenClaimsInput): string {
  const payload = JSON.stringify({
    iss: claims.issuer,
    sub: claims.subject,
    aud: claims.audience,
    exp: claims.issuedAtSeconds + claims.ttlSeconds,
    nbf: claims.issuedAtSeconds - NOT_BEFORE_SLACK_SECONDS,
    iat: claims.issuedAtSeconds,
    // jti from the CSPRNG (RFC 7519 §4.1.7); docker_auth used math/rand.
    jti: randomUUID(),
    access: claims.access,
  });
  const signingInput = `${key.headerB64}.${Buffer.from(payload).toString("base64url")}`;
  // JWS wants ECDSA signatures as raw r||s (RFC 7518 §3.4), not DER.
  const signature = key.isEc
    ? sign(key.hash, Buffer.from(signingInput), { key: key.privateKey, dsaEncoding: "ieee-p1363" })
    : sign(key.hash, Buffer.from(signingInput), key.privateKey);
  return `${signingInput}.${signature.toString("base64url")}`;
}
