/**
 * `acl_xorm`: ACL entries from docker_auth's `xorm_acl_entry` table (authz/acl_xorm.go), read
 * in `seq` order into the same ACL engine as the config's `acl` (compileAcl, authorizeByAcl),
 * and read again every `cache_ttl`. As docker_auth, a reload that fails keeps the previous ACL;
 * unlike it:
 *   - every entry is validated as strictly as the config's `acl` (unknown keys, bad patterns, IP
 *     ranges); one bad entry rejects the whole new set, the log names its `seq` and field, and
 *     the previous good set keeps serving (docker_auth would serve nothing, or a partial set);
 *   - a missing or zero cache_ttl reloads every minute (docker_auth panics: time.NewTicker(0));
 *   - before the first successful read, requests fail with 503 instead of 500 "not ready".
 *
 * The `acl_entry` JSON is docker_auth's ACLEntry as Go's encoding/json writes it (`Match`,
 * `Actions`, `Comment`, since the struct has no json tags) or as people write it by hand
 * (`match`, `actions`); Go matches keys case-insensitively, so both forms are read.
 */
import { Value } from "@sinclair/typebox/value";
import { type Acl, type AclRuleConfig, type AuthzRequest, authorizeByAcl, compileAcl } from "../acl.ts";
import type { Authorizer } from "../authz/authorizer.ts";
import { AclEntryConfig } from "../config/schema.ts";
import { type ConfigProblem, Unavailable } from "../errors.ts";
import { log } from "../log.ts";
import type { SqlBackendSettings } from "./config.ts";
import { describeFailure, SqlDatabase } from "./sql-database.ts";
import { ACL_TABLE, asTableProblem, checkTable } from "./tables.ts";
import { metrics } from "../metrics/recorder.ts";

export const ACL_XORM_AUTHORIZER_NAME = "acl_xorm";

/** More entries than this are refused: the whole table is evaluated per requested scope. */
export const MAX_ACL_ENTRIES = 10_000;

export interface AclXormAuthorizer extends Authorizer {
  /** Reads the table now (also what the timer does). Resolves whether or not it worked. */
  reload(): Promise<void>;
  /** The entries currently serving; null before the first good read. */
  readonly entryCount: number | null;
  /** The ACL currently serving; null before the first good read (registration asks it: reserved-names.ts). */
  readonly currentAcl: Acl | null;
  close(): Promise<void>;
}

interface AclRow {
  seq: unknown;
  acl_entry: unknown;
}

export function aclXormAuthorizer(settings: SqlBackendSettings, reloadIntervalMs: number): AclXormAuthorizer {
  return new AclTable(settings, reloadIntervalMs);
}

class AclTable implements AclXormAuthorizer {
  readonly name = ACL_XORM_AUTHORIZER_NAME;
  private readonly db: SqlDatabase;
  private acl: Acl | null = null;
  private loading: Promise<void> | null = null;
  private readonly timer: ReturnType<typeof setInterval>;
  private tableChecked = false;
  /** The last failure logged, so a lasting outage is logged once, not on every tick. */
  private lastFailure: string | null = null;

  constructor(
    private readonly settings: SqlBackendSettings,
    reloadIntervalMs: number,
  ) {
    this.db = new SqlDatabase(settings.connection, { createMissingFile: settings.createTables });
    void this.reload();
    this.timer = setInterval(() => void this.reload(), reloadIntervalMs);
    this.timer.unref?.();
  }

  get currentAcl(): Acl | null {
    return this.acl;
  }

  get entryCount(): number | null {
    return this.acl?.rules.length ?? null;
  }

  async authorize(request: AuthzRequest): Promise<string[] | null> {
    if (this.acl === null) await this.reload();
    if (this.acl === null)
      throw new Unavailable("the ACL table could not be read; try again later (see the server log)");
    return authorizeByAcl(this.acl, request);
  }

  reload(): Promise<void> {
    // One read at a time; callers arriving meanwhile wait for it.
    this.loading ??= this.load().finally(() => (this.loading = null));
    return this.loading;
  }

  private async load(): Promise<void> {
    let rows: AclRow[];
    try {
      if (!this.tableChecked) {
        await checkTable(this.db, ACL_TABLE, this.settings.createTables);
        this.tableChecked = true;
      }
      rows = await this.db.query<AclRow>(
        (sql) => sql`SELECT seq, acl_entry FROM xorm_acl_entry ORDER BY seq`,
      );
    } catch (error) {
      const problem = asTableProblem(error, this.db, ACL_TABLE);
      this.reportFailure(problem ? problem.message : `cannot read the ACL table: ${describeFailure(error)}`);
      return;
    }
    const { rules, problems } = parseAclRows(rows);
    if (problems.length > 0) {
      this.reportFailure(
        `invalid entries in ${ACL_TABLE.name}: ${problems.map((p) => `${p.path}: ${p.message}`).join("; ")}`,
      );
      return;
    }
    const { acl, problems: compileProblems } = compileAcl(rules, "acl_xorm");
    if (compileProblems.length > 0) {
      this.reportFailure(
        `invalid entries in ${ACL_TABLE.name}: ${compileProblems.map((p) => `${withSeq(p.path, rows)}: ${p.message}`).join("; ")}`,
      );
      return;
    }
    const changed =
      this.acl === null || this.lastFailure !== null || this.acl.rules.length !== acl.rules.length;
    this.acl = acl;
    this.lastFailure = null;
    if (changed)
      log.info("acl_xorm loaded the ACL table", { database: this.db.display, entries: acl.rules.length });
  }

  private reportFailure(message: string): void {
    metrics.backendError(this.name); // every failed reload, though only a new message is logged
    if (message === this.lastFailure) return;
    this.lastFailure = message;
    log.error(
      this.acl === null
        ? "acl_xorm has no ACL: requests it would decide fail until the table can be read"
        : "acl_xorm keeps serving the previous ACL",
      { status: 503, database: this.db.display, error: message, serving: this.acl?.rules.length ?? 0 },
    );
  }

  close(): Promise<void> {
    clearInterval(this.timer);
    return this.db.close();
  }
}

const ENTRY_KEYS = ["match", "actions", "comment"] as const;
const MATCH_KEYS = ["account", "type", "name", "ip", "service", "labels"] as const;

/** Rows to ACL rules, or problems that name each bad row by its `seq` and field. */
export function parseAclRows(rows: readonly AclRow[]): { rules: AclRuleConfig[]; problems: ConfigProblem[] } {
  const rules: AclRuleConfig[] = [];
  const problems: ConfigProblem[] = [];
  if (rows.length > MAX_ACL_ENTRIES) {
    problems.push({
      path: ACL_TABLE.name,
      message: `${rows.length} entries; at most ${MAX_ACL_ENTRIES} are read`,
    });
    return { rules, problems };
  }
  for (const row of rows) {
    const at = `seq ${row.seq === null || row.seq === undefined ? "NULL" : String(row.seq)}`;
    let value: unknown = row.acl_entry;
    if (value instanceof Uint8Array) value = new TextDecoder().decode(value);
    if (typeof value === "string") {
      try {
        const text = value;
        value = JSON.parse(text);
        const repeated = repeatedKey(text);
        if (repeated !== null) {
          problems.push({
            path: `${at} acl_entry`,
            message: `key ${JSON.stringify(repeated)} appears twice in one object (Go would merge the two, JSON.parse keeps the last; write it once)`,
          });
          continue;
        }
      } catch (error) {
        problems.push({ path: `${at} acl_entry`, message: `not JSON (${(error as Error).message})` });
        continue;
      }
    }
    const entry = foldEntry(value);
    const errors = [...Value.Errors(AclEntryConfig, entry)];
    if (errors.length > 0) {
      const seen = new Set<string>();
      for (const error of errors) {
        const field = error.path.slice(1).replaceAll("/", ".") || "acl_entry";
        if (seen.has(field)) continue;
        seen.add(field);
        problems.push({
          path: `${at} ${field}`,
          message: error.message === "Unexpected property" ? "unknown key" : error.message.toLowerCase(),
        });
      }
      continue;
    }
    rules.push(entry as unknown as AclRuleConfig);
  }
  return { rules, problems };
}

/**
 * The entry as docker_auth's json.Unmarshal into ACLEntry sees it. Go matches object keys to
 * struct fields case-insensitively, so `Match` and `match` are the same field, and a second key
 * for a field is decoded INTO what the first one set (review finding 4): `Match` is a non-nil
 * *MatchConditions by then, so the second object sets only the fields it has and the first's
 * others stay (`{Match: {account: alice, name: x/*}, match: {name: x/*}}` is alice's rule, not
 * everyone's); a map (`labels`) keeps its entries and gains the second's; a string or an array
 * (`actions`: Go resets the slice) is replaced. Keys that fold to no field are kept (and then
 * rejected by the schema).
 */
function foldEntry(value: unknown): Record<string, unknown> | null {
  if (!isObject(value)) return null;
  const folded: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    const name = foldedName(key, ENTRY_KEYS);
    if (name === "match" && isObject(item)) {
      const previous = folded.match;
      folded.match = foldMatch(isObject(previous) ? previous : {}, item);
    } else folded[name] = item;
  }
  return folded;
}

function foldMatch(into: Record<string, unknown>, value: Record<string, unknown>): Record<string, unknown> {
  for (const [key, item] of Object.entries(value)) {
    const name = foldedName(key, MATCH_KEYS);
    const previous = into[name];
    into[name] = name === "labels" && isObject(item) && isObject(previous) ? { ...previous, ...item } : item;
  }
  return into;
}

function foldedName(key: string, known: readonly string[]): string {
  return known.find((k) => k === key.toLowerCase()) ?? key;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * The first key that appears twice in one object of valid JSON `text`, or null. JSON.parse
 * keeps the last of two equal keys, where Go merges them (foldEntry), so such a row is refused
 * rather than read differently from docker_auth.
 */
function repeatedKey(text: string): string | null {
  const objects: ({ keys: Set<string>; expectingKey: boolean } | null)[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    const top = objects[objects.length - 1];
    if (c === '"') {
      let end = i + 1;
      while (end < text.length && text[end] !== '"') end += text[end] === "\\" ? 2 : 1;
      if (top?.expectingKey) {
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        if (top.keys.has(key)) return key;
        top.keys.add(key);
        top.expectingKey = false;
      }
      i = end;
    } else if (c === "{") objects.push({ keys: new Set(), expectingKey: true });
    else if (c === "[") objects.push(null);
    else if (c === "}" || c === "]") objects.pop();
    else if (c === "," && top) top.expectingKey = true;
  }
  return null;
}

/** compileAcl's `acl_xorm.N.match.x` paths, with N (the rule's index) replaced by its row's seq. */
function withSeq(path: string, rows: readonly AclRow[]): string {
  const match = /^acl_xorm\.(\d+)\.?(.*)$/.exec(path);
  if (!match) return path;
  const row = rows[Number(match[1])];
  return `seq ${row ? String(row.seq) : "?"} ${match[2]}`.trim();
}
