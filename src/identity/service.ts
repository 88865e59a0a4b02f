/**
 * The identity providers of a running server (issue 15): the configured providers, the flow
 * cookie that carries a pending sign-in (sealed; the server keeps nothing per started sign-in),
 * and the re-check sweep (revalidate_after_seconds, max_unchecked_seconds).
 */
import type { Database } from "bun:sqlite";
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import type { AuditLog } from "../audit/audit-log.ts";
import { log } from "../log.ts";
import type { IdentityProvidersConfig } from "./config-schema.ts";
import { BUILT_IN_RESERVED_NAMES, type ReservedNames } from "../accounts/reserved-names.ts";
import type { CredentialKey } from "./credential-key.ts";
import { serverKey } from "../serve/server-secret.ts";
import { githubDriver, oidcDriver, type SignInDriver } from "./drivers.ts";
import { endAccessThroughLink, linksDue, markChecked, syncDatabaseGroups } from "./links.ts";
import type { PendingSignIn } from "./oidc.ts";

/** A sign-in not finished in ten minutes is refused (the person starts again). */
export const PENDING_SIGN_IN_SECONDS = 600;
/** A start from the future beyond this is not ours (the clock went back, or a forgery). */
const FLOW_CLOCK_SKEW_SECONDS = 60;
/**
 * Flow cookies longer than this are refused unread. Ours stay under 1,200 characters: `next` is
 * at most 512 (safeNext), the provider name 32, state, nonce and verifier 43 each.
 */
export const MAX_FLOW_COOKIE_CHARS = 2048;
/**
 * Used flows remembered at once. Only a successful code exchange adds one, so filling this takes
 * that many real sign-ins at the provider within ten minutes; past it the oldest goes, and a
 * replay of that flow still fails at the provider, which refuses a code used twice (RFC 6749
 * §4.1.2).
 */
export const MAX_USED_FLOWS = 10_000;
/** Why access ended when the provider stayed out of reach past the cap (log and audit). */
export const UNREACHABLE_TOO_LONG = "provider unreachable for longer than max_unchecked_seconds";

const FLOW_VERSION = "v1.";
const FLOW_KEY_BYTES = 32;
const FLOW_IV_BYTES = 12;
const FLOW_TAG_BYTES = 16;
const FLOW_ID = /^[A-Za-z0-9_-]{22}$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

/** A flow cookie that opened: its pending sign-in, and the random id that makes it single use. */
export interface OpenedFlow {
  id: string;
  pending: PendingSignIn;
}

export class IdentityService {
  /** Every provider by name (names are unique across kinds: config-check.ts). */
  readonly providers: ReadonlyMap<string, SignInDriver>;

  readonly #key: CredentialKey;
  /**
   * Seals the flow cookies: a key for this server start only (src/serve/server-secret.ts), shared
   * by its workers so a sign-in started on one finishes on another, and not derived from the
   * credential key, so no cookie outlives a restart of the server. Used flows are remembered in
   * each process's memory: a finished callback replayed on another worker, or on a worker
   * restarted since, opens there, and is then refused by the provider, whose code is single use
   * (RFC 6749 §4.1.2). A restart of the server in the middle of a sign-in (at most ten minutes of
   * them) means starting again. Random 96-bit IVs are safe for far more seals than a server makes
   * (NIST SP 800-38D §8.3: 2^32 under one key).
   */
  readonly #flowKey = serverKey("identity flow cookie").subarray(0, FLOW_KEY_BYTES);
  /** Flow id → the end of its ten minutes; only flows whose code exchange succeeded. */
  readonly #usedFlows = new Map<string, number>();

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

  /**
   * The flow cookie's value for a started sign-in: the pending sign-in itself (provider, state,
   * nonce, PKCE verifier, next, start time) and a random flow id, sealed with AES-256-GCM. The
   * server keeps nothing, so a flood of started sign-ins costs no memory and evicts no one's
   * (each person's pending sign-in is in their own browser). The state binds the callback to the
   * browser that started it (RFC 6749 §10.12, login CSRF); the verifier (RFC 7636 §4.1) and the
   * nonce (OIDC Core §3.1.2.1) stay unreadable to whoever sees the cookie, and the provider's
   * name is the additional data, so a cookie started for one provider does not open at another.
   */
  sealFlow(pending: PendingSignIn): string {
    const plain = JSON.stringify({
      id: randomBytes(16).toString("base64url"),
      provider: pending.provider,
      state: pending.state,
      nonce: pending.nonce,
      codeVerifier: pending.codeVerifier,
      next: pending.next,
      createdAtUnix: pending.createdAtUnix,
    });
    const iv = randomBytes(FLOW_IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", this.#flowKey, iv);
    cipher.setAAD(flowAad(pending.provider));
    const sealed = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()]);
    const value = `${FLOW_VERSION}${Buffer.concat([iv, sealed, cipher.getAuthTag()]).toString("base64url")}`;
    // The inputs are bounded (safeNext, the config's name pattern); this is their sum, checked.
    if (value.length > MAX_FLOW_COOKIE_CHARS) throw new Error("flow cookie over its size bound");
    return value;
  }

  /**
   * The pending sign-in sealed in this flow cookie for `provider`, or null: no cookie, not ours
   * (another process, tampered, truncated, oversized), another provider's, older than ten
   * minutes, or used already. Null is the one answer, so the page says the same for all.
   */
  openFlow(value: string | undefined, provider: string, nowUnix: number): OpenedFlow | null {
    if (value === undefined || value.length > MAX_FLOW_COOKIE_CHARS || !value.startsWith(FLOW_VERSION))
      return null;
    const encoded = value.slice(FLOW_VERSION.length);
    // Buffer's base64url decoder skips what it cannot read; only the alphabet is ours.
    if (!BASE64URL.test(encoded)) return null;
    const bytes = Buffer.from(encoded, "base64url");
    if (bytes.length <= FLOW_IV_BYTES + FLOW_TAG_BYTES) return null;
    let parsed: unknown;
    try {
      const decipher = createDecipheriv("aes-256-gcm", this.#flowKey, bytes.subarray(0, FLOW_IV_BYTES));
      decipher.setAAD(flowAad(provider));
      decipher.setAuthTag(bytes.subarray(bytes.length - FLOW_TAG_BYTES));
      const plain = Buffer.concat([
        decipher.update(bytes.subarray(FLOW_IV_BYTES, bytes.length - FLOW_TAG_BYTES)),
        decipher.final(),
      ]);
      parsed = JSON.parse(plain.toString("utf8"));
    } catch {
      return null;
    }
    const flow = openedFlowOf(parsed);
    if (flow === null || flow.pending.provider !== provider) return null;
    const ageSeconds = nowUnix - flow.pending.createdAtUnix;
    if (ageSeconds > PENDING_SIGN_IN_SECONDS || ageSeconds < -FLOW_CLOCK_SKEW_SECONDS) return null;
    const usedUntil = this.#usedFlows.get(flow.id);
    if (usedUntil !== undefined && usedUntil >= nowUnix) return null;
    return flow;
  }

  /**
   * Marks the flow used, after its code exchange succeeded: a second callback with the same
   * cookie is refused before it reaches the provider. False when it was used already (two
   * callbacks at once: the later one loses). Refused and failed exchanges add nothing, so an
   * anonymous client cannot fill the set.
   */
  useFlow(flow: OpenedFlow, nowUnix: number): boolean {
    for (const [id, usedUntil] of this.#usedFlows) {
      // Insertion order is nearly expiry order (a flow is used within ten minutes of its start).
      if (usedUntil >= nowUnix) break;
      this.#usedFlows.delete(id);
    }
    const usedUntil = this.#usedFlows.get(flow.id);
    if (usedUntil !== undefined && usedUntil >= nowUnix) return false;
    if (this.#usedFlows.size >= MAX_USED_FLOWS) {
      const oldest = this.#usedFlows.keys().next().value;
      if (oldest !== undefined) this.#usedFlows.delete(oldest);
    }
    this.#usedFlows.set(flow.id, flow.pending.createdAtUnix + PENDING_SIGN_IN_SECONDS);
    return true;
  }

  /** How many used flows are remembered: all the memory sign-ins cost (tests, metrics). */
  get usedFlowCount(): number {
    return this.#usedFlows.size;
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
          // A driver that throws (a bug, an answer no branch expected) is an outage for this link
          // only: the sweep goes on to the others rather than ending at the same link every time.
          const result = await provider
            .recheck(credential, link.subject)
            .catch((error): { kind: "unreachable"; reason: string } => ({
              kind: "unreachable",
              reason: `re-check failed: ${error instanceof Error ? error.message : String(error)}`.slice(
                0,
                300,
              ),
            }));
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

/** The flow cookie's purpose and provider, as AES-GCM's additional data. */
function flowAad(provider: string): Buffer {
  return Buffer.from(`regauth identity flow cookie v1\0${provider}`);
}

/** The sealed JSON narrowed field by field: it opened under our key, but is still checked. */
function openedFlowOf(value: unknown): OpenedFlow | null {
  if (typeof value !== "object" || value === null) return null;
  const v = value as Record<string, unknown>;
  const strings = [v.provider, v.state, v.nonce, v.codeVerifier, v.next];
  if (!strings.every((s) => typeof s === "string")) return null;
  if (typeof v.id !== "string" || !FLOW_ID.test(v.id)) return null;
  if (typeof v.createdAtUnix !== "number" || !Number.isSafeInteger(v.createdAtUnix)) return null;
  return {
    id: v.id,
    pending: {
      provider: v.provider as string,
      state: v.state as string,
      nonce: v.nonce as string,
      codeVerifier: v.codeVerifier as string,
      next: v.next as string,
      createdAtUnix: v.createdAtUnix,
    },
  };
}
