/**
 * What the token path records in the audit log (issue 10 item 6): logins with the back-end that
 * decided, and one event per token request with what was asked and what was granted. A denied
 * push is then visible without debug logging (outcome "denied" whenever an asked action was not
 * granted). Plain data in; recording goes through AuditLog.record, which never blocks.
 *
 * Successful logins are recorded at most once a minute per (account, back-end, address): every
 * token request already has its "token" event, and docker asks for a token per blob.
 */
import type { ClientIp } from "../acl.ts";
import type { Principal } from "../authn/authenticator.ts";
import type { Scope } from "../scope.ts";
import type { Grant } from "../token/sign.ts";
import type { AuditLog } from "./audit-log.ts";

export type TokenDecisionRecording = "all" | "denied" | "none";

export interface TokenRequestFacts {
  service: string;
  scopes: readonly Scope[];
  ip: ClientIp | null;
  clientId: string | null;
  /** The Basic user name (for token logins it may be anything). */
  claimedAccount: string;
  /** "refresh_token" for a refresh grant, else "password". */
  grant: "password" | "refresh_token";
}

const LOGIN_RESOLUTION_MS = 60_000;
const MAX_REMEMBERED_LOGINS = 100_000;
const MAX_CLIENT_ID_LENGTH = 100;

const formatScope = (s: { type: string; class?: string; name: string; actions: readonly string[] }) =>
  `${s.type}${s.class ? `(${s.class})` : ""}:${s.name}:${s.actions.join(",")}`;

export class TokenAudit {
  readonly #recentLogins = new Map<string, number>();

  constructor(
    readonly log: AuditLog,
    readonly tokenDecisions: TokenDecisionRecording,
  ) {}

  /** A refused login: always recorded (the throttle bounds how many one client can cause). */
  loginRefused(
    request: TokenRequestFacts,
    account: string,
    decidedBy: string,
    reason: string | undefined,
  ): void {
    this.log.record({
      kind: "login",
      actor: account.slice(0, 256),
      ip: request.ip?.text ?? "",
      repository: firstRepository(request.scopes),
      outcome: "denied",
      details: {
        authenticator: decidedBy,
        grant: request.grant,
        service: request.service,
        ...(reason ? { reason } : {}),
        ...(request.clientId ? { client_id: request.clientId.slice(0, MAX_CLIENT_ID_LENGTH) } : {}),
      },
    });
  }

  /** A successful login, at most once a minute per account, back-end and address. */
  loggedIn(request: TokenRequestFacts, principal: Principal, nowMs: number = Date.now()): void {
    if (principal.isAnonymous) return;
    const key = `${principal.account}\u0000${principal.authenticator}\u0000${request.ip?.text ?? ""}`;
    const last = this.#recentLogins.get(key);
    if (last !== undefined && nowMs - last < LOGIN_RESOLUTION_MS) return;
    if (this.#recentLogins.size >= MAX_REMEMBERED_LOGINS) this.#recentLogins.clear();
    this.#recentLogins.set(key, nowMs);
    this.log.record({
      kind: "login",
      actor: principal.account,
      ip: request.ip?.text ?? "",
      repository: null,
      outcome: "ok",
      details: {
        authenticator: principal.authenticator,
        grant: request.grant,
        ...(principal.accessToken ? { token_id: principal.accessToken.id } : {}),
        ...(request.clientId ? { client_id: request.clientId.slice(0, MAX_CLIENT_ID_LENGTH) } : {}),
      },
    });
  }

  /**
   * One token request: who, for which service, what was asked and what was granted. Identical
   * decisions within a second are one event with a count (AuditLog.recordCoalesced).
   */
  decided(request: TokenRequestFacts, principal: Principal, grants: readonly Grant[]): void {
    if (this.tokenDecisions === "none") return;
    const denied = request.scopes.some((scope, i) => (grants[i]?.actions.length ?? 0) < scope.actions.length);
    if (!denied && this.tokenDecisions === "denied") return;
    const requested = request.scopes.map(formatScope);
    const granted = grants.filter((g) => g.actions.length > 0).map(formatScope);
    const ip = request.ip?.text ?? "";
    const clientId = request.clientId?.slice(0, MAX_CLIENT_ID_LENGTH) ?? "";
    const tokenId = principal.accessToken?.id;
    const claimed =
      principal.accessToken && request.claimedAccount !== principal.account
        ? request.claimedAccount.slice(0, 100)
        : undefined;
    const key = [
      principal.account,
      principal.authenticator,
      ip,
      request.service,
      request.grant,
      clientId,
      tokenId ?? "",
      claimed ?? "",
      requested.join(" "),
      granted.join(" "),
    ].join("\u0000");
    this.log.recordCoalesced(`token\u0000${key}`, () => ({
      kind: "token",
      actor: principal.account,
      ip,
      repository: firstRepository(request.scopes),
      outcome: denied ? "denied" : "ok",
      details: {
        service: request.service,
        authenticator: principal.authenticator,
        grant: request.grant,
        requested,
        granted,
        ...(tokenId !== undefined ? { token_id: tokenId } : {}),
        ...(claimed !== undefined ? { claimed_account: claimed } : {}),
        ...(clientId ? { client_id: clientId } : {}),
      },
    }));
  }
}

function firstRepository(scopes: readonly Scope[]): string | null {
  return scopes.find((s) => s.type === "repository")?.name ?? null;
}
