/**
 * Identity links and the account rules of issue 15 item 3: which database account an identity
 * at a provider (issuer + subject) signs in as, who is let in (allowed email domains and groups),
 * the provider groups mirrored into database groups, and what happens when a re-check fails.
 * Plain functions over the database; "refused" is a value with a message for the person.
 */
import type { Database } from "bun:sqlite";
import { isNamespaceInUse } from "../accounts/permissions.ts";
import { BUILT_IN_RESERVED_NAMES, type ReservedNames } from "../accounts/reserved-names.ts";
import { createUser, findUser, retiredName, type User, usernameProblem } from "../accounts/users.ts";
import { BadRequest, Conflict, NotFound } from "../errors.ts";
import type { OidcProviderConfig } from "./config-schema.ts";

/** What the account rules need of a provider's section (an OIDC provider's, or GitHub's). */
export type AccountRules = Pick<
  OidcProviderConfig,
  "name" | "display_name" | "first_sign_in" | "user_claim" | "database_groups"
>;

export interface IdentityLink {
  id: number;
  userId: number;
  provider: string;
  issuer: string;
  subject: string;
  linkedBy: "first_sign_in" | "admin";
  refreshToken: string | null;
  createdAtUnix: number;
  checkedAtUnix: number;
}

interface LinkRow {
  id: number;
  user_id: number;
  provider: string;
  issuer: string;
  subject: string;
  linked_by: "first_sign_in" | "admin";
  refresh_token: string | null;
  labels: string;
  created_at_unix: number;
  checked_at_unix: number;
}

function toLink(row: LinkRow): IdentityLink {
  return {
    id: row.id,
    userId: row.user_id,
    provider: row.provider,
    issuer: row.issuer,
    subject: row.subject,
    linkedBy: row.linked_by,
    refreshToken: row.refresh_token,
    createdAtUnix: row.created_at_unix,
    checkedAtUnix: row.checked_at_unix,
  };
}

export function findLink(db: Database, issuer: string, subject: string): IdentityLink | null {
  const row = db
    .query<LinkRow, [string, string]>("SELECT * FROM identity_links WHERE issuer = ? AND subject = ?")
    .get(issuer, subject);
  return row ? toLink(row) : null;
}

export function linksOfUser(db: Database, userId: number): IdentityLink[] {
  return db
    .query<LinkRow, [number]>("SELECT * FROM identity_links WHERE user_id = ? ORDER BY provider")
    .all(userId)
    .map(toLink);
}

/** Links whose last check is older than `olderThanUnix` and that hold a refresh token. */
export function linksDue(db: Database, provider: string, olderThanUnix: number): IdentityLink[] {
  return db
    .query<LinkRow, [string, number]>(
      "SELECT * FROM identity_links WHERE provider = ? AND checked_at_unix > 0 AND checked_at_unix <= ? ORDER BY checked_at_unix LIMIT 100",
    )
    .all(provider, olderThanUnix)
    .map(toLink);
}

export interface NewLink {
  userId: number;
  provider: string;
  issuer: string;
  subject: string;
  linkedBy: "first_sign_in" | "admin";
  nowUnix: number;
}

/** Conflict when the identity is linked already, or the account has a link to this provider. */
export function insertLink(db: Database, link: NewLink): IdentityLink {
  const row = db
    .query<LinkRow, Record<string, string | number>>(
      `INSERT INTO identity_links (user_id, provider, issuer, subject, linked_by, created_at_unix)
       VALUES ($userId, $provider, $issuer, $subject, $linkedBy, $now)
       ON CONFLICT DO NOTHING RETURNING *`,
    )
    .get({
      userId: link.userId,
      provider: link.provider,
      issuer: link.issuer,
      subject: link.subject,
      linkedBy: link.linkedBy,
      now: link.nowUnix,
    });
  if (!row)
    throw new Conflict(`that identity, or a ${link.provider} identity of this account, is linked already`);
  return toLink(row);
}

export function deleteLink(db: Database, userId: number, provider: string): boolean {
  return (
    db.query("DELETE FROM identity_links WHERE user_id = ? AND provider = ?").run(userId, provider).changes >
    0
  );
}

/** A sign-in or passed re-check: the refresh token to use next, and the labels of `labels` (null: keep). */
export function markChecked(
  db: Database,
  linkId: number,
  refreshToken: string | null,
  nowUnix: number,
  labels: Record<string, string[]> | null,
): void {
  db.query(
    "UPDATE identity_links SET refresh_token = ?, checked_at_unix = ?, labels = coalesce(?, labels) WHERE id = ?",
  ).run(refreshToken, nowUnix, labels === null ? null : JSON.stringify(labels), linkId);
}

/** At most this many values per label: a claim listing thousands of groups does not bloat every token request. */
export const MAX_LABEL_VALUES = 256;

/** The labels the claims named in labels_from_claims give (strings, or lists of strings). */
export function labelsFromClaims(
  config: OidcProviderConfig,
  claims: Record<string, unknown>,
): Record<string, string[]> {
  const labels: Record<string, string[]> = {};
  for (const name of config.labels_from_claims) {
    const raw = claims[name];
    const values = (Array.isArray(raw) ? raw : [raw]).filter(
      (v): v is string => typeof v === "string" && v.length > 0 && v.length <= 256,
    );
    if (values.length > 0) labels[name] = [...new Set(values)].slice(0, MAX_LABEL_VALUES);
  }
  return labels;
}

/**
 * The ACL labels of an account's linked identities, merged (src/access-tokens/authenticator.ts
 * gives them to the account's access tokens). One indexed read; a broken row gives none.
 */
export function identityLabelsOf(db: Database, userId: number): Record<string, string[]> {
  const merged: Record<string, string[]> = {};
  const rows = db
    .query<{ labels: string }, [number]>(
      "SELECT labels FROM identity_links WHERE user_id = ? AND labels != '{}'",
    )
    .all(userId);
  for (const row of rows) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(row.labels);
    } catch {
      continue;
    }
    if (typeof parsed !== "object" || parsed === null) continue;
    for (const [label, values] of Object.entries(parsed)) {
      if (!Array.isArray(values)) continue;
      const strings = values.filter((v): v is string => typeof v === "string");
      merged[label] = [...new Set([...(merged[label] ?? []), ...strings])];
    }
  }
  return merged;
}

/** Claims as the rules see them. */
export interface ClaimFacts {
  email: string | null;
  emailVerified: boolean;
  groups: string[];
}

export function claimFacts(config: OidcProviderConfig, claims: Record<string, unknown>): ClaimFacts {
  const email = typeof claims.email === "string" ? claims.email : null;
  const raw = claims[config.groups_claim];
  const groups = Array.isArray(raw)
    ? raw.filter((g): g is string => typeof g === "string")
    : typeof raw === "string"
      ? [raw]
      : [];
  return { email, emailVerified: claims.email_verified === true, groups };
}

/** Null when the identity may sign in, else why not (for the person). */
export function admissionProblem(config: OidcProviderConfig, facts: ClaimFacts): string | null {
  if (config.allowed_email_domains) {
    const domain = facts.email?.split("@").at(-1)?.toLowerCase() ?? null;
    if (
      !facts.email ||
      !facts.emailVerified ||
      !domain ||
      !config.allowed_email_domains.some((d) => d.toLowerCase() === domain)
    )
      return `Only accounts with a verified email address at ${config.allowed_email_domains.join(", ")} may sign in here.`;
  }
  if (config.allowed_groups && !facts.groups.some((g) => config.allowed_groups?.includes(g)))
    return `Only members of ${config.allowed_groups.join(", ")} may sign in here.`;
  return null;
}

/** The account name the claims propose (user_claim; for `email`, the local part, lower-cased). */
export function proposedName(config: AccountRules, claims: Record<string, unknown>): string | null {
  const value = claims[config.user_claim];
  if (typeof value !== "string") return null;
  if (config.user_claim === "email") {
    if (claims.email_verified !== true) return null;
    const at = value.lastIndexOf("@");
    return at > 0 ? value.slice(0, at).toLowerCase() : null;
  }
  return value;
}

export type AccountResolution =
  | { kind: "ok"; user: User; link: IdentityLink; created: boolean }
  | { kind: "refused"; status: number; message: string; log: string };

/**
 * The account this identity signs in as. A linked identity gets its account; an unlinked one gets
 * a new account only under first_sign_in: create, and never one whose name is taken: an IdP
 * account never takes over a local account of the same name (issue 15 item 3); an administrator
 * links them (`regauth identity link`).
 */
export function resolveAccount(
  db: Database,
  config: AccountRules,
  identity: { issuer: string; subject: string; claims: Record<string, unknown> },
  nowUnix: number,
  /** Names a first sign-in may not take, as registration may not (src/accounts/reserved-names.ts). */
  reservedNames: ReservedNames = BUILT_IN_RESERVED_NAMES,
): AccountResolution {
  const link = findLink(db, identity.issuer, identity.subject);
  if (link) {
    const user = db.query<{ name: string }, [number]>("SELECT name FROM users WHERE id = ?").get(link.userId);
    const found = user ? findUser(db, user.name) : null;
    if (!found || found.kind !== "person")
      return {
        kind: "refused",
        status: 403,
        message: "The account linked to this identity is gone.",
        log: "linked account missing",
      };
    if (!found.isEnabled)
      return {
        kind: "refused",
        status: 403,
        message: `The account ${found.name} is disabled.`,
        log: "account disabled",
      };
    return { kind: "ok", user: found, link, created: false };
  }
  const linkCommand = `regauth identity link NAME --provider ${config.name} --subject ${identity.subject}`;
  if (config.first_sign_in === "link_only")
    return {
      kind: "refused",
      status: 403,
      message: `No regauth account is linked to this ${config.display_name ?? config.name} identity. Ask an administrator to run: ${linkCommand}`,
      log: "identity not linked",
    };
  const name = proposedName(config, identity.claims);
  if (name === null)
    return {
      kind: "refused",
      status: 403,
      message: `The provider did not send the claim ${config.user_claim}${config.user_claim === "email" ? " with a verified address" : ""}, which names the account.`,
      log: `claim ${config.user_claim} missing`,
    };
  const problem = usernameProblem(name);
  if (problem)
    return {
      kind: "refused",
      status: 403,
      message: `Your ${config.user_claim} ${JSON.stringify(name.slice(0, 80))} cannot be a regauth account name: ${problem}. Ask an administrator to create an account and link it: ${linkCommand}`,
      log: "claim is not a valid account name",
    };
  // As for registration: the account owns NAME/* (its personal namespace), so a name the ACL or
  // database grants hand to others, a built-in one (library, admin, ...) or a deleted user's is
  // not for a first sign-in to take; the refusal does not say which list it is on.
  if (
    !findUser(db, name) &&
    (BUILT_IN_RESERVED_NAMES.has(name) ||
      reservedNames.has(name) ||
      isNamespaceInUse(db, name) ||
      retiredName(db, name))
  )
    return {
      kind: "refused",
      status: 403,
      message: `The account name ${name} is not available. Ask an administrator to create an account and link it: ${linkCommand}`,
      log: "name reserved or in use",
    };
  if (findUser(db, name))
    return {
      kind: "refused",
      status: 409,
      message: `An account named ${name} exists already and is not linked to this identity, so signing in cannot take it over. If it is yours, ask an administrator to run: regauth identity link ${name} --provider ${config.name} --subject ${identity.subject}`,
      log: "name taken by an unlinked account",
    };
  try {
    const created = db.transaction(() => {
      // '!' never verifies (as robots): the account signs in through its provider only.
      const user = createUser(db, { name, passwordHash: "!", nowUnix });
      const newLink = insertLink(db, {
        userId: user.id,
        provider: config.name,
        issuer: identity.issuer,
        subject: identity.subject,
        linkedBy: "first_sign_in",
        nowUnix,
      });
      return { user, link: newLink };
    })();
    return { kind: "ok", ...created, created: true };
  } catch (error) {
    if (error instanceof Conflict)
      return {
        kind: "refused",
        status: 409,
        message: `The account name ${name} is not available: ${error.message}.`,
        log: "create refused",
      };
    throw error;
  }
}

/**
 * Mirrors the provider's groups into the database groups named in database_groups: joins the
 * ones the claims list, leaves the others of that map. A group missing from the database is
 * created (it has no grants until an administrator gives it some).
 */
export function syncDatabaseGroups(
  db: Database,
  config: AccountRules,
  userId: number,
  groups: readonly string[],
  nowUnix: number,
): void {
  const map = config.database_groups;
  if (!map) return;
  const wanted = new Set(
    Object.entries(map)
      .filter(([from]) => groups.includes(from))
      .map(([, to]) => to),
  );
  for (const target of new Set(Object.values(map))) {
    if (usernameProblem(target) !== null) continue;
    db.query("INSERT INTO groups (name, created_at_unix) VALUES (?, ?) ON CONFLICT (name) DO NOTHING").run(
      target,
      nowUnix,
    );
    const groupId = db
      .query<{ id: number }, [string]>("SELECT id FROM groups WHERE name = ?")
      .get(target)?.id;
    if (groupId === undefined) continue;
    if (wanted.has(target))
      db.query("INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES (?, ?)").run(groupId, userId);
    else db.query("DELETE FROM group_members WHERE group_id = ? AND user_id = ?").run(groupId, userId);
  }
}

/**
 * A failed re-check (the user removed at the provider or from the allowed groups): every web
 * session and refresh token of the account ends (credential_epoch moves), the access tokens made
 * since the identity was linked are deleted (they came from its sign-ins, or at least could
 * have), the mirrored groups are left, and the link forgets its refresh token and is not
 * re-checked again until the next sign-in. Returns how many access tokens went.
 */
export function endAccessThroughLink(
  db: Database,
  config: AccountRules,
  link: IdentityLink,
  nowUnix: number,
): number {
  return db.transaction(() => {
    db.query("UPDATE users SET credential_epoch = credential_epoch + 1 WHERE id = ?").run(link.userId);
    const tokens = db
      .query("DELETE FROM access_tokens WHERE user_id = ? AND created_at_unix >= ?")
      .run(link.userId, link.createdAtUnix).changes;
    db.query(
      "UPDATE identity_links SET refresh_token = NULL, checked_at_unix = 0, labels = '{}' WHERE id = ?",
    ).run(link.id);
    syncDatabaseGroups(db, config, link.userId, [], nowUnix);
    return tokens;
  })();
}

/**
 * An administrator's link (`regauth identity link`; issue 15 item 3): the only way an identity at
 * a provider signs in as an account that exists already. Person accounts only (robots sign in
 * with tokens alone).
 */
export function linkIdentity(
  db: Database,
  input: { account: string; provider: string; issuer: string; subject: string; nowUnix: number },
): IdentityLink {
  const user = findUser(db, input.account);
  if (!user) throw new NotFound(`no user ${JSON.stringify(input.account)}`);
  if (user.kind !== "person")
    throw new BadRequest(`${input.account} is a robot account; robots sign in with access tokens only`);
  if (input.subject === "" || input.subject.length > 255 || /\p{Cc}/u.test(input.subject))
    throw new BadRequest("the subject must be 1 to 255 characters without control characters");
  return insertLink(db, {
    userId: user.id,
    provider: input.provider,
    issuer: input.issuer,
    subject: input.subject,
    linkedBy: "admin",
    nowUnix: input.nowUnix,
  });
}
