/** Domain records → the API's views (src/management/schemas.ts): snake_case, RFC 3339 times. */
import type { Group } from "../accounts/groups.ts";
import { formatGrantee, type Permission } from "../accounts/permissions.ts";
import type { RetiredName, User } from "../accounts/users.ts";
import type { GroupView, PermissionView, RetiredNameView, UserView } from "./schemas.ts";

/** RFC 3339 in UTC, whole seconds. */
export function rfc3339(unixSeconds: number): string {
  return new Date(unixSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** 0 (never) → null. */
export function rfc3339OrNull(unixSeconds: number | null): string | null {
  return unixSeconds === null || unixSeconds === 0 ? null : rfc3339(unixSeconds);
}

export type UserKind = "person" | "robot";

export function userView(user: User & { kind?: UserKind }): UserView {
  return {
    name: user.name,
    kind: user.kind ?? "person",
    is_admin: user.isAdmin,
    is_enabled: user.isEnabled,
    is_pending_approval: user.isPendingApproval,
    created_at: rfc3339(user.createdAtUnix),
    last_login_at: rfc3339OrNull(user.lastLoginAtUnix),
  };
}

export function groupView(group: Group): GroupView {
  return { name: group.name, members: group.members, created_at: rfc3339(group.createdAtUnix) };
}

export function permissionView(permission: Permission): PermissionView {
  return {
    grantee: formatGrantee(permission.grantee),
    pattern: permission.pattern,
    level: permission.level,
    created_at: rfc3339(permission.createdAtUnix),
  };
}

export function retiredNameView(retired: RetiredName): RetiredNameView {
  return { name: retired.name, retired_at: rfc3339(retired.retiredAtUnix) };
}

// Display forms the CLI's tables and the pages share.

/** A size in SI units, as docker prints image sizes: 1.2 MB. */
export function humanSize(bytes: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** The digest as `docker images --digests` shortens it: algorithm and the first 12 hex digits. */
export function shortDigest(digest: string): string {
  const colon = digest.indexOf(":");
  return colon < 0 ? digest.slice(0, 19) : `${digest.slice(0, colon)}:${digest.slice(colon + 1, colon + 13)}`;
}
