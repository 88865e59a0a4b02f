/**
 * Who is acting and with what: the one argument every management operation takes (design §3).
 * The API builds it from the authenticated caller; the offline CLI builds it with the
 * `local-admin` actor. Plain data: the domain never sees HTTP.
 */
import type { Database } from "bun:sqlite";
import type { AccessTokenKey } from "../access-tokens/key.ts";
import type { AuditLog, NewAuditEvent } from "../audit/audit-log.ts";
import type { WebhookServices } from "../webhooks/webhooks.ts";
import type { RegistryIndexAccess } from "../registry-index/catalog.ts";
import type { TokenScope } from "./schemas.ts";

export type Actor =
  /** The offline CLI on the data directory: whoever can write the database is its administrator. */
  | { kind: "local-admin" }
  | {
      kind: "account";
      name: string;
      userId: number;
      isAdmin: boolean;
      via: "password" | "access-token";
      /** The scopes of the access token the caller used (via "access-token" only). */
      tokenScopes?: readonly TokenScope[];
      /** The repository patterns of that access token: the catalog shows only what they cover. */
      tokenRepositoryPatterns?: readonly string[];
    };

/** One audit record as the management layer writes it (src/audit AuditLog's input). */
export type ManagementAuditEvent = NewAuditEvent;

export interface ManagementConfig {
  personalNamespaces: boolean;
  /** `access_tokens.max_lifetime_days`; null: tokens may never expire. */
  maxTokenLifetimeDays: number | null;
}

/** Verifies a password against a stored hash (src/authn/password-verifier.ts PasswordVerifier). */
export interface PasswordCheck {
  verify(username: string, password: string, storedHash: string): Promise<boolean>;
  /** Runs hashing under the verifier's concurrency limit. */
  limited<T>(work: () => Promise<T>): Promise<T>;
}

export interface ManagementContext {
  db: Database;
  actor: Actor;
  /** The caller's address, for the audit log ("" offline). */
  ip: string;
  audit: AuditLog;
  accessTokenKey: AccessTokenKeyRef;
  config: ManagementConfig;
  nowUnix: number;
  /** Absent: Bun.password.verify directly (the offline CLI). */
  passwords?: PasswordCheck;
  /** The webhooks' settings and secrets key (src/webhooks/); absent: webhook operations answer 503. */
  webhooks?: WebhookServices;
  /** The image index's pull checks and sync (issue 11); absent: the catalog shows nothing but to administrators. */
  registryIndex?: RegistryIndexAccess;
}

/** src/access-tokens AccessTokenKey (the HMAC key under the data directory). */
export type AccessTokenKeyRef = AccessTokenKey;

export function actorName(actor: Actor): string {
  return actor.kind === "local-admin" ? "local-admin" : actor.name;
}
