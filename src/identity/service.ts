/**
 * The identity providers of a running server (issue 15): the configured OIDC providers, the
 * pending sign-ins (the flow cookie's server side: single use, ten minutes, bounded), and the
 * re-check sweep (revalidate_after_seconds).
 */
import type { Database } from "bun:sqlite";
import { randomBytes } from "node:crypto";
import type { AuditLog } from "../audit/audit-log.ts";
import { log } from "../log.ts";
import type { IdentityProvidersConfig } from "./config-schema.ts";
import { BUILT_IN_RESERVED_NAMES, type ReservedNames } from "../accounts/reserved-names.ts";
import type { CredentialKey } from "./credential-key.ts";
import { githubDriver, oidcDriver, type SignInDriver } from "./drivers.ts";
import { endAccessThroughLink, linksDue, markChecked, syncDatabaseGroups } from "./links.ts";
import type { PendingSignIn } from "./oidc.ts";

/** A sign-in not finished in ten minutes is forgotten (the person starts again). */
export const PENDING_SIGN_IN_SECONDS = 600;
/** At most this many sign-ins wait at once: a flood of /sign-in/oidc/NAME costs bounded memory. */
export const MAX_PENDING_SIGN_INS = 10_000;
const FLOW_ID = /^[A-Za-z0-9_-]{43}$/;

/** Why access ended when the provider stayed out of reach past the cap (log and audit). */
export const UNREACHABLE_TOO_LONG = "provider unreachable for longer than max_unchecked_seconds";

export class IdentityService {
  /** Every provider by name (names are unique across kinds: config-check.ts). */
  readonly providers: ReadonlyMap<string, SignInDriver>;
  readonly #pending = new Map<string, PendingSignIn>();

  readonly #key: CredentialKey;

  /** Names a first sign-in may not create (as registration; src/accounts/reserved-names.ts). */
  readonly reservedNames: ReservedNames;

  constructor(
    config: IdentityProvidersConfig,
    pathPrefix: string,
    key: CredentialKey,
    reservedNames: ReservedNames = BUILT_IN_RESERVED_NAMES,
  ) {
    this.#key = key;
    this.reservedNames = reservedNames;
    this.providers = new Map([
      ...config.oidc.map((p): [string, SignInDriver] => [
        p.name,
        oidcDriver(p, config.public_url, pathPrefix),
      ]),
      ...config.github.map((p): [string, SignInDriver] => [
        p.name,
        githubDriver(p, config.public_url, pathPrefix),
      ]),
    ]);
  }

  /** A provider credential as the database keeps it (sealed), or null. */
  seal(linkId: number, credential: string | null): string | null {
    return credential === null ? null : this.#key.seal(linkId, credential);
  }

  /** Keeps the pending sign-in; returns the id for the browser's flow cookie. */
  remember(pending: PendingSignIn, nowUnix: number): string {
    this.#prune(nowUnix);
    if (this.#pending.size >= MAX_PENDING_SIGN_INS) {
      // The oldest goes (Map keeps insertion order): a flood delays others, never grows memory.
      const oldest = this.#pending.keys().next().value;
      if (oldest !== undefined) this.#pending.delete(oldest);
    }
    const id = randomBytes(32).toString("base64url");
    this.#pending.set(id, pending);
    return id;
  }

  /** The pending sign-in of this flow cookie, removed: a second callback with it finds nothing. */
  take(id: string | undefined, nowUnix: number): PendingSignIn | null {
    if (id === undefined || !FLOW_ID.test(id)) return null;
    const pending = this.#pending.get(id) ?? null;
    this.#pending.delete(id);
    if (!pending || nowUnix - pending.createdAtUnix > PENDING_SIGN_IN_SECONDS) return null;
    return pending;
  }

  /**
   * Sweeps every half of the shortest revalidate_after_seconds (5 s to 5 min), one sweep at a
   * time; the timer does not hold the process open. Returns the stop function.
   */
  startRevalidating(db: Database, audit: AuditLog | null): () => void {
    const shortest = Math.min(...[...this.providers.values()].map((p) => p.revalidateAfterSeconds));
    if (!Number.isFinite(shortest)) return () => {};
    const everyMs = Math.min(300, Math.max(5, Math.floor(shortest / 2))) * 1000;
    let running = false;
    const timer = setInterval(() => {
      if (running) return;
      running = true;
      this.revalidate(db, audit, Math.floor(Date.now() / 1000))
        .catch((error) =>
          log.warn("identity re-check sweep failed", {
            error: error instanceof Error ? error.message : String(error),
          }),
        )
        .finally(() => {
          running = false;
        });
    }, everyMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  #prune(nowUnix: number): void {
    for (const [id, pending] of this.#pending) {
      if (nowUnix - pending.createdAtUnix <= PENDING_SIGN_IN_SECONDS) break;
      this.#pending.delete(id);
    }
  }

  /**
   * Re-checks every identity whose last check is older than its provider's
   * revalidate_after_seconds. A refusal ends the account's access through it; a provider that
   * cannot be reached is logged and tried at the next sweep (an outage there is not a removal),
   * until the last successful check is older than max_unchecked_seconds: then access ends as for
   * a refusal, so an outage (or a provider kept out of reach) cannot extend access for ever.
   */
  async revalidate(
    db: Database,
    audit: AuditLog | null,
    nowUnix: number,
  ): Promise<{ checked: number; ended: number }> {
    let checked = 0;
    let ended = 0;
    for (const provider of this.providers.values()) {
      const rules = provider.rules;
      for (const link of linksDue(db, provider.name, nowUnix - provider.revalidateAfterSeconds)) {
        checked++;
        const account =
          db.query<{ name: string }, [number]>("SELECT name FROM users WHERE id = ?").get(link.userId)
            ?.name ?? "";
        let reason: string | null;
        const credential = link.refreshToken === null ? null : this.#key.open(link.id, link.refreshToken);
        if (credential === null) reason = "no refresh token to re-check with (sign in again)";
        else {
          const result = await provider.recheck(credential, link.subject);
          if (result.kind === "unreachable") {
            // checked_at_unix moves only on a successful check, so it dates the last one.
            const uncheckedSeconds = nowUnix - link.checkedAtUnix;
            if (uncheckedSeconds <= provider.maxUncheckedSeconds) {
              log.warn("identity re-check postponed: provider unreachable", {
                provider: provider.name,
                account,
                reason: result.reason,
                unchecked_seconds: uncheckedSeconds,
              });
              continue;
            }
            reason = UNREACHABLE_TOO_LONG;
          } else if (result.kind === "refused") reason = result.reason;
          else {
            const claims = result.identity.claims;
            // A refresh without a new ID token proves the grant lives; the groups stay as they were.
            const fresh = Object.keys(claims).length > 0;
            reason = fresh ? provider.admission(claims) : null;
            if (reason === null) {
              markChecked(
                db,
                link.id,
                this.seal(link.id, result.identity.refreshToken),
                nowUnix,
                fresh ? provider.labels(claims) : null,
              );
              if (fresh) syncDatabaseGroups(db, rules, link.userId, provider.groups(claims), nowUnix);
            }
          }
        }
        if (reason === null) continue;
        ended++;
        const tokens = endAccessThroughLink(db, rules, link, nowUnix);
        log.info("identity re-check failed: access ended", {
          provider: provider.name,
          account,
          reason,
          access_tokens_deleted: tokens,
        });
        audit?.record({
          kind: "identity.revoked",
          actor: account,
          ip: "",
          repository: null,
          outcome: "denied",
          details: { provider: provider.name, reason: reason.slice(0, 200), access_tokens_deleted: tokens },
        });
      }
    }
    return { checked, ended };
  }
}
