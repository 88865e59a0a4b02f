/**
 * The views the CLI prints, as the management layer defines them (issue 10 design §3: snake_case
 * keys, RFC 3339 times, null for never). One place, so that switching to the TypeBox types of
 * src/management/schemas.ts is one edit here.
 */
export type Level = "read" | "write" | "admin";
export type TokenScope = "pull" | "push" | "delete" | "api";

export interface UserView {
  name: string;
  kind: "person" | "robot";
  is_admin: boolean;
  is_enabled: boolean;
  is_pending_approval: boolean;
  created_at: string;
  last_login_at: string | null;
}

export interface GroupView {
  name: string;
  members: string[];
  created_at: string;
}

export interface PermissionView {
  /** "alice", "@devs" (a group) or "*" (everyone). */
  grantee: string;
  pattern: string;
  level: Level;
  created_at: string;
}

export interface AccessTokenView {
  id: number;
  owner: string;
  name: string;
  scopes: TokenScope[];
  repository_patterns: string[];
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  last_used_ip: string;
}

export interface CreatedAccessTokenView extends AccessTokenView {
  secret: string;
}

export interface RobotView {
  name: string;
  owner_namespace: string | null;
  description: string;
  is_enabled: boolean;
  created_at: string;
  last_login_at: string | null;
}

export interface AuditEventView {
  id: number;
  at: string;
  kind: string;
  actor: string;
  ip: string;
  repository: string | null;
  outcome: "ok" | "denied" | "failed";
  details: Record<string, unknown>;
}

/** A deleted user's name, kept from being taken until released (not in the API yet). */
export interface RetiredNameView {
  name: string;
  retired_at: string;
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}
