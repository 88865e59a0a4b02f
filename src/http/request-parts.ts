/**
 * Reading the parts of an HTTP request that the token endpoint needs: Basic credentials
 * (RFC 7617) and the client address (TCP peer, or a trusted proxy header as docker_auth's
 * real_ip_header/real_ip_pos). Plain functions over headers; no Elysia here.
 */
import type { ClientIp } from "../acl.ts";
import type { Credentials } from "../authn/authenticator.ts";
import { BadRequest } from "../errors.ts";
import { parseIp } from "../ip.ts";

/** Longest username and password we look at; anything longer is a client error, not a hash job. */
export const MAX_USERNAME_BYTES = 256;
export const MAX_PASSWORD_BYTES = 4096;

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Parses `Authorization: Basic ...`. Returns null when there is no header. The split is at the
 * first ':' (RFC 7617 §2: the user-id cannot contain one, the password can). Throws BadRequest
 * for another scheme, bad base64, or no ':' at all.
 */
export function parseBasicAuthorization(header: string | null): Credentials | null {
  if (header === null) return null;
  const match = /^basic +([^ ]*) *$/i.exec(header);
  if (!match) {
    throw new BadRequest(
      /^\S+ /.test(header) && !/^basic /i.test(header)
        ? "unsupported Authorization scheme; the token endpoint takes Basic credentials"
        : "malformed Authorization header",
    );
  }
  const encoded = match[1] as string;
  if (encoded.length % 4 !== 0 || !BASE64.test(encoded))
    throw new BadRequest("malformed Basic credentials: not base64");
  const decoded = Buffer.from(encoded, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon === -1) throw new BadRequest("malformed Basic credentials: expected user:password");
  return checkedCredentials(decoded.slice(0, colon), decoded.slice(colon + 1));
}

/** Length checks shared by Basic and form credentials. */
export function checkedCredentials(username: string, password: string): Credentials {
  if (Buffer.byteLength(username) > MAX_USERNAME_BYTES)
    throw new BadRequest(`username longer than ${MAX_USERNAME_BYTES} bytes`);
  if (Buffer.byteLength(password) > MAX_PASSWORD_BYTES)
    throw new BadRequest(`password longer than ${MAX_PASSWORD_BYTES} bytes`);
  return { username, password };
}

export interface RealIpConfig {
  header: string | undefined;
  position: number;
}

/**
 * The client's address for ACL `ip` matches and throttling. With a real-IP header configured the
 * header must be present (docker_auth: "client address not provided"); the entry at `position`
 * is used, negative positions counting from the end. The config default is -1, the entry the
 * nearest proxy appended: the ones before it are the client's to write (review M5). Several header
 * lines arrive joined with ", " (Headers.get), which is how HAProxy's `forwardfor` appends.
 */
export function resolveClientIp(
  headers: Headers,
  peerAddress: string | undefined,
  realIp: RealIpConfig,
): ClientIp | null {
  let text = peerAddress;
  if (realIp.header !== undefined) {
    const value = headers.get(realIp.header);
    if (value === null || value.trim() === "") throw new BadRequest("client address not provided");
    const entries = value.split(",");
    const index = realIp.position < 0 ? Math.max(0, entries.length + realIp.position) : realIp.position;
    const entry = entries[index];
    if (entry === undefined) throw new BadRequest("client address not provided at the configured position");
    text = entry.trim();
  }
  if (text === undefined) return null;
  const bytes = parseIp(text);
  if (!bytes) {
    if (realIp.header !== undefined) throw new BadRequest("unable to parse client address");
    return null;
  }
  return { text, bytes };
}
