/**
 * The access token authenticator, first in the chain (src/server.ts): a Basic password that
 * looks like an access token (prefix, length, checksum: no database, no key) is decided here,
 * and nothing else is asked: one HMAC and one indexed SELECT, no argon2 or bcrypt (issue 10
 * item 3). Any other password is no-match, for the rest of the chain.
 *
 * The Basic user name is ignored: the token alone says whose it is, as GitHub's and GitLab's do,
 * so `docker login -u anything` works. The principal is the owner, with the token's limits
 * (Principal.accessToken), authenticated as "access-token": the database authorizer treats it as
 * the owner's database account, and src/authz/authorizer.ts cuts the result down to the token.
 *
 * Last use (time and address) is written through the database's BackgroundWriter, at most once
 * a minute per token, never on the request thread; so is the owner's last login.
 */
import type { Database } from "bun:sqlite";
import type { AuditLog } from "../audit/audit-log.ts";
import { type Authenticator, type AuthnOutcome, DENY, NO_MATCH } from "../authn/authenticator.ts";
import type { BackgroundWriter } from "../db/background-writer.ts";
import { identityLabelsOf } from "../identity/links.ts";
import { findTokenBySecret } from "./access-tokens.ts";
import type { AccessTokenKey } from "./key.ts";
import { looksLikeAccessToken } from "./secret.ts";

export const ACCESS_TOKEN_AUTHENTICATOR = "access-token";
/** last_used_at_unix (and the owner's last login) is written at most this often per token. */
export const LAST_USED_RESOLUTION_SECONDS = 60;
/** Tokens remembered for the once-a-minute rule; beyond, the memory starts over. */
const MAX_REMEMBERED_TOKENS = 100_000;

export function accessTokenAuthenticator(
  db: Database,
  key: AccessTokenKey,
  writer: BackgroundWriter,
  options: { nowSeconds?: () => number; audit?: AuditLog } = {},
): Authenticator {
  const nowSeconds = options.nowSeconds ?? (() => Math.floor(Date.now() / 1000));
  const lastQueued = new Map<number, number>(); // token id → unix seconds we last queued a use

  const noteUse = (
    token: { id: number; ownerId: number; owner: string; ownerKind: string; lastUsedAtUnix: number },
    ip: string,
    claimed: string,
    now: number,
  ) => {
    if (now - Math.max(token.lastUsedAtUnix, lastQueued.get(token.id) ?? 0) < LAST_USED_RESOLUTION_SECONDS)
      return;
    if (lastQueued.size >= MAX_REMEMBERED_TOKENS) lastQueued.clear();
    lastQueued.set(token.id, now);
    writer.enqueue({
      key: `access-token-used:${token.id}`,
      sql: "UPDATE access_tokens SET last_used_at_unix = $now, last_used_ip = $ip WHERE id = $id",
      params: { now, ip, id: token.id },
    });
    writer.enqueue({
      key: `last-login:${token.ownerId}`,
      sql: "UPDATE users SET last_login_at_unix = $now WHERE id = $id",
      params: { now, id: token.ownerId },
    });
    options.audit?.record({
      kind: "access-token.used",
      actor: token.owner,
      ip,
      repository: null,
      outcome: "ok",
      details: { token_id: token.id, owner_kind: token.ownerKind, claimed_account: claimed.slice(0, 100) },
    });
  };

  return {
    name: ACCESS_TOKEN_AUTHENTICATOR,
    authenticate({ username, password }, { ip }): AuthnOutcome {
      if (!looksLikeAccessToken(password)) return NO_MATCH;
      const token = findTokenBySecret(db, key, password);
      if (!token) return DENY;
      const now = nowSeconds();
      // The client proved the secret: it may be told why it is refused.
      if (token.expiresAtUnix !== null && token.expiresAtUnix <= now)
        return { kind: "deny", reason: "the access token has expired" };
      if (!token.ownerEnabled)
        return {
          kind: "deny",
          reason: token.ownerPendingApproval
            ? `account ${token.owner} is not active yet: it awaits approval by an administrator`
            : `account ${token.owner} is disabled by an administrator`,
        };
      noteUse(token, ip?.text ?? "", username, now);
      return {
        kind: "allow",
        // The ACL labels its owner's provider identities gave at the last sign-in or re-check
        // (identity_providers.oidc[].labels_from_claims, issue 15); none for other accounts.
        labels: identityLabelsOf(db, token.ownerId),
        account: token.owner,
        accessToken: { id: token.id, scopes: token.scopes, repositoryPatterns: token.repositoryPatterns },
      };
    },
  };
}
