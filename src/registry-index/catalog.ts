/**
 * The catalog filtered by permission (issue 11 item 3): the index's repositories that the caller
 * may pull, decided by the very authorizer chain that decides token requests (src/authz/
 * authorizer.ts `authorize`: config ACL, acl_xorm, database grants with groups and public grants,
 * ext_authz), asked as a token request for `repository:NAME:pull` would ask it.
 *
 * Cost: a page walks the index in name order from the cursor (a range scan on the UNIQUE name
 * index, narrowed to the pattern's literal prefix) and asks the chain about each candidate, in
 * requests of at most MAX_EXT_AUTHZ_RUNS_PER_REQUEST scopes (so ext_authz's per-request cap never
 * cuts a page short). A page stops after `limit` visible repositories or MAX_CHECKS_PER_PAGE
 * candidates, whichever comes first, and then returns a cursor: a caller who may pull a few
 * repositories of a large index pays at most MAX_CHECKS_PER_PAGE checks per page (and may get
 * a short, even empty, page with a cursor), never a pass over the whole index per request.
 */
import type { Database } from "bun:sqlite";
import type { ClientIp } from "../acl.ts";
import { authenticate, type Principal } from "../authn/authenticator.ts";
import { type Authorizer, authorize } from "../authz/authorizer.ts";
import { type Glob, globPrefix, matchGlob, parseGlob } from "../glob.ts";
import { MAX_EXT_AUTHZ_RUNS_PER_REQUEST } from "../hooks/ext-authz.ts";
import type { TokenIssuer } from "../issue-token.ts";
import { listRepositories, type RepositoryRow } from "./index-store.ts";
import type { SyncReport, SyncTrigger } from "./sync.ts";

/** The names among `names` that the caller may pull. */
export type PullCheck = ((names: readonly string[]) => Promise<ReadonlySet<string>>) & {
  /** Candidates a page may ask about with this check; default MAX_CHECKS_PER_PAGE. */
  maxChecksPerPage?: number;
};

/** Candidates asked about per page at most (see the header). */
export const MAX_CHECKS_PER_PAGE = 1000;
/**
 * The budget when an ext_authz program takes part: it runs once per name asked about, and a
 * token request may make it run at most MAX_EXT_AUTHZ_RUNS_PER_REQUEST times. One catalog page
 * (anonymous ones too) costs no more than one token request may, not 1000 program runs: a page
 * must not be a way to make the server spawn programs by the hundred (review of issue 11).
 */
export const MAX_CHECKS_PER_PAGE_WITH_PROGRAM = MAX_EXT_AUTHZ_RUNS_PER_REQUEST;
/** Index rows a page reads at most (a PATTERN with no literal prefix filters them in memory). */
export const MAX_SCANNED_PER_PAGE = 20_000;
/** Rows read from the index per step of a page. */
const SCAN_BATCH = 200;

/**
 * The pull check of one caller: `principal` as the token path's authentication would have made
 * it, asked through `authorizers` (the current issuer's chain) for `service` from `ip`.
 */
export function pullCheckFor(
  authorizers: readonly Authorizer[],
  principal: Principal,
  service: string,
  ip: ClientIp | null,
): PullCheck {
  const check: PullCheck = async (names) => {
    const allowed = new Set<string>();
    for (let i = 0; i < names.length; i += MAX_EXT_AUTHZ_RUNS_PER_REQUEST) {
      const scopes = names
        .slice(i, i + MAX_EXT_AUTHZ_RUNS_PER_REQUEST)
        .map((name) => ({ type: "repository", name, actions: ["pull"] }));
      const grants = await authorize(authorizers, principal, scopes, service, ip);
      for (const grant of grants) if (grant.actions.includes("pull")) allowed.add(grant.name);
    }
    return allowed;
  };
  if (authorizers.some((authorizer) => authorizer.name === "ext_authz"))
    check.maxChecksPerPage = MAX_CHECKS_PER_PAGE_WITH_PROGRAM;
  return check;
}

/** Whose pull rights a catalog shows: a database account (the API authenticated it), or nobody. */
export type PullViewer = { kind: "account"; name: string } | { kind: "anonymous" };

const NOTHING: PullCheck = async () => new Set();

/**
 * The pull check of `viewer` against `issuer`'s chain, with the principal the token path would
 * build. An account the management API authenticated is a database account (password or access
 * token; the token's owner), so it is the database authenticator's principal. Anonymous callers
 * are authenticated as a token request without credentials is: the chain decides whether they get
 * in at all (the database admits them only when it holds public grants) and then which
 * authorizers apply (src/authz/authorizer.ts: database public grants only).
 */
export async function viewerPullCheck(
  issuer: TokenIssuer,
  viewer: PullViewer,
  service: string,
  ip: ClientIp | null,
): Promise<PullCheck> {
  if (viewer.kind === "account") {
    const principal: Principal = {
      account: viewer.name,
      labels: {},
      isAnonymous: false,
      authenticator: "database",
    };
    return pullCheckFor(issuer.authorizers, principal, service, ip);
  }
  const decision = await authenticate(issuer.authenticators, { username: "", password: "" }, { ip });
  if (decision.kind !== "allow") return NOTHING;
  return pullCheckFor(issuer.authorizers, decision.principal, service, ip);
}

/** What the management operations need from the running server for the catalog and the sync. */
export interface RegistryIndexAccess {
  pullCheck(viewer: PullViewer, ip: ClientIp | null): Promise<PullCheck>;
  /** host[:port] clients pull from, for the `docker pull` line; null: unknown. */
  registryHost: string | null;
  /** Crawl and reconcile now (joins a run in flight); null when notifications.registry_url is not set. */
  sync: ((trigger: SyncTrigger) => Promise<SyncReport>) | null;
}

/** A PATTERN is a docker_auth glob over repository names: these characters and no others. */
const PATTERN_CHARACTERS = /^[a-z0-9._\-/*?[\]^\\]+$/;
export const MAX_CATALOG_PATTERN_LENGTH = 255;

/** The glob of a PATTERN, or a reason it is not one (the caller turns it into a 400). */
export function parseCatalogPattern(pattern: string): Glob | string {
  if (pattern.length > MAX_CATALOG_PATTERN_LENGTH)
    return `longer than ${MAX_CATALOG_PATTERN_LENGTH} characters`;
  if (!PATTERN_CHARACTERS.test(pattern))
    return "a glob over repository names (lowercase letters, digits, . _ - / and the glob operators * ? [ ] ^ \\)";
  return parseGlob(pattern) ?? "not a well-formed glob (an unterminated [ or a trailing \\)";
}

export interface CatalogPageRequest {
  glob: Glob | null;
  /** Names after this one (keyset pagination). */
  afterName?: string;
  limit: number;
}

export interface CatalogPage {
  repositories: RepositoryRow[];
  /** Where the next page starts; null when the index has no more candidates. */
  nextAfterName: string | null;
}

/** One page of the repositories the caller may pull; `mayPull` "all" for an administrator. */
export async function visibleRepositories(
  db: Database,
  request: CatalogPageRequest,
  mayPull: PullCheck | "all",
): Promise<CatalogPage> {
  const namePrefix = request.glob ? globPrefix(request.glob) : "";
  const glob = request.glob;
  const visible: RepositoryRow[] = [];
  let after = request.afterName;
  const maxChecks =
    mayPull === "all" ? MAX_CHECKS_PER_PAGE : (mayPull.maxChecksPerPage ?? MAX_CHECKS_PER_PAGE);
  let checked = 0;
  let scanned = 0;
  for (;;) {
    const batch = listRepositories(db, {
      ...(after !== undefined ? { afterName: after } : {}),
      namePrefix,
      limit: SCAN_BATCH,
    });
    scanned += batch.length;
    const candidates = glob ? batch.filter((row) => matchGlob(glob, row.name)) : batch;
    const asked = candidates.slice(0, maxChecks - checked);
    checked += asked.length;
    const allowed = mayPull === "all" ? null : await mayPull(asked.map((row) => row.name));
    const isIndexEnd = asked.length === candidates.length && batch.length < SCAN_BATCH;
    for (const [i, row] of asked.entries()) {
      if (allowed !== null && !allowed.has(row.name)) continue;
      visible.push(row);
      if (visible.length === request.limit) {
        const isLast = isIndexEnd && i === asked.length - 1;
        return { repositories: visible, nextAfterName: isLast ? null : row.name };
      }
    }
    // Out of budget mid-batch: the next page goes on after the last one asked about.
    if (asked.length < candidates.length)
      return { repositories: visible, nextAfterName: asked.at(-1)?.name ?? after ?? null };
    if (batch.length < SCAN_BATCH) return { repositories: visible, nextAfterName: null };
    after = batch.at(-1)?.name;
    if (checked >= maxChecks || scanned >= MAX_SCANNED_PER_PAGE)
      return { repositories: visible, nextAfterName: after ?? null };
  }
}
