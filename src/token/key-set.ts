/**
 * Signing key rotation (issue 12, item 2). The generated key in the data directory is the first
 * entry of a key set; `regauth key rotate` adds the next one, which is published at once (in the
 * rootcertbundle file and the JWKS) but signs only after `token.rotation_overlap_seconds`, so that
 * registries restarted with the new bundle trust it before it is used. A replaced key stays
 * published until every token it signed has expired: the longest token lifetime plus the
 * registry's 60 s leeway (registry/auth/token/token.go Leeway; security.md §2.7, safe order).
 *
 * State lives in `token-keys.json` next to the key files (`token.key`/`token.crt` for the first
 * key, `token-N.key`/`token-N.crt` after it). Without that file the set is the one generated key.
 */
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { JWK } from "jose";
import { dataDirOwnerToChownTo, KEY_ROTATION_STATE_FILE, ROTATED_KEY_FILE } from "../db/data-dir.ts";
import { readPrivateFile, writePrivateFile } from "../fs/private-file.ts";
import { log } from "../log.ts";
import { generateSigningKeyPair, loadSigningKey, type SigningKey } from "./keys.ts";

export const KEY_SET_FILE = KEY_ROTATION_STATE_FILE;
export const BUNDLE_FILE = "token-bundle.crt";
export const JWKS_FILE = "jwks.json";
/** The registry accepts a token up to 60 s after its exp (distribution token.go Leeway). */
export const REGISTRY_LEEWAY_SECONDS = 60;
const FIRST_KEY_ID = "token";
const REFRESH_INTERVAL_MS = 10_000;
/** Key ids name files: only ours, never a path (RFC 8725 §3.10 spirit; the file is ours, still checked). */
const KEY_ID_PATTERN = /^token(-[1-9][0-9]{0,8})?$/;

export interface KeyEntry {
  /** File stem in the data directory: `${id}.key`, `${id}.crt`. */
  id: string;
  createdAtSeconds: number;
  /** When it starts signing; the first key's is its creation. */
  activatesAtSeconds: number;
}

export type KeyState = "next" | "current" | "retired" | "expired";

export interface KeyTimeline {
  entry: KeyEntry;
  state: KeyState;
  /** When a successor takes over signing (null: no successor yet). */
  retiresAtSeconds: number | null;
  /** When it leaves the published set: retirement + longest token lifetime + leeway. */
  leavesSetAtSeconds: number | null;
}

/**
 * The state machine, a pure function of the entries and the time: the current key is the latest
 * one whose activation has come; later ones are next; earlier ones are retired until their last
 * token has expired, then expired (no longer published).
 */
export function keyTimelines(
  entries: readonly KeyEntry[],
  nowSeconds: number,
  maxTokenLifetimeSeconds: number,
): KeyTimeline[] {
  const sorted = [...entries].sort((a, b) => a.activatesAtSeconds - b.activatesAtSeconds);
  let currentIndex = -1;
  sorted.forEach((entry, index) => {
    if (entry.activatesAtSeconds <= nowSeconds) currentIndex = index;
  });
  // Clock set back before the first activation: the oldest key signs rather than none.
  if (currentIndex === -1) currentIndex = 0;
  return sorted.map((entry, index) => {
    const successor = sorted[index + 1];
    const retiresAtSeconds = successor ? successor.activatesAtSeconds : null;
    const leavesSetAtSeconds =
      retiresAtSeconds === null ? null : retiresAtSeconds + maxTokenLifetimeSeconds + REGISTRY_LEEWAY_SECONDS;
    let state: KeyState;
    if (index === currentIndex) state = "current";
    else if (index > currentIndex) state = "next";
    else state = leavesSetAtSeconds !== null && nowSeconds < leavesSetAtSeconds ? "retired" : "expired";
    return { entry, state, retiresAtSeconds, leavesSetAtSeconds };
  });
}

/** Parses token-keys.json; every problem is an error (the file is ours; a broken one is not guessed at). */
export function parseKeySetFile(text: string): KeyEntry[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`${KEY_SET_FILE} is not valid JSON`);
  }
  const keys = (parsed as { keys?: unknown } | null)?.keys;
  if (typeof parsed !== "object" || parsed === null || !Array.isArray(keys) || keys.length === 0)
    throw new Error(`${KEY_SET_FILE} must be an object with a non-empty "keys" list`);
  const seen = new Set<string>();
  return keys.map((raw, index) => {
    const item = raw as Record<string, unknown> | null;
    const id = item?.id;
    const created = item?.created_at;
    const activates = item?.activates_at;
    if (typeof id !== "string" || !KEY_ID_PATTERN.test(id) || seen.has(id))
      throw new Error(`${KEY_SET_FILE}: keys[${index}].id must be a unique token or token-N`);
    for (const [name, value] of [
      ["created_at", created],
      ["activates_at", activates],
    ] as const)
      if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0)
        throw new Error(
          `${KEY_SET_FILE}: keys[${index}].${name} must be a non-negative integer (Unix seconds)`,
        );
    seen.add(id);
    return { id, createdAtSeconds: created as number, activatesAtSeconds: activates as number };
  });
}

export function renderKeySetFile(entries: readonly KeyEntry[]): string {
  const keys = entries.map((e) => ({
    id: e.id,
    created_at: e.createdAtSeconds,
    activates_at: e.activatesAtSeconds,
  }));
  return `${JSON.stringify({ keys }, null, 2)}\n`;
}

/** The entries on disk; without token-keys.json, the one generated key, created when token.key was. */
export function readKeyEntries(dataDir: string): KeyEntry[] {
  let text: string;
  try {
    text = readPrivateFile(join(dataDir, KEY_SET_FILE)).toString("utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    const createdAtSeconds = Math.floor(statSync(join(dataDir, `${FIRST_KEY_ID}.key`)).mtimeMs / 1000);
    return [{ id: FIRST_KEY_ID, createdAtSeconds, activatesAtSeconds: 0 }];
  }
  return parseKeySetFile(text);
}

export interface PublishedKey {
  timeline: KeyTimeline;
  key: SigningKey;
}

export interface KeySet {
  /** Every key not yet expired at load time, oldest activation first. */
  keys: PublishedKey[];
  /** The key that signs at `nowSeconds` (a next key takes over at its activation, without a reload). */
  signingKeyAt(nowSeconds: number): SigningKey;
}

export interface KeySetOptions {
  useThumbprintKid: boolean;
  /** token.expiration: the longest lifetime of a registry token. */
  maxTokenLifetimeSeconds: number;
  /** `regauth key list` shows expired keys too; a server never loads them. */
  includeExpired?: boolean;
}

/**
 * Loads the generated key set of `dataDir` as it stands at `nowSeconds` (for the SIGHUP reload of
 * branch `reload`, and for the server start). Throws when a key of the set cannot be used.
 */
export async function loadKeySet(
  dataDir: string,
  nowSeconds: number,
  options: KeySetOptions,
): Promise<KeySet> {
  const timelines = keyTimelines(readKeyEntries(dataDir), nowSeconds, options.maxTokenLifetimeSeconds);
  const keys: PublishedKey[] = [];
  for (const timeline of timelines) {
    if (timeline.state === "expired" && !options.includeExpired) continue;
    const { id } = timeline.entry;
    const loaded = await loadSigningKey(
      {
        keyPath: join(dataDir, `${id}.key`),
        certificatePath: join(dataDir, `${id}.crt`),
        useThumbprintKid: options.useThumbprintKid,
        inDataDir: true,
      },
      { key: "data_dir", certificate: "data_dir" },
    );
    if (!loaded.key) {
      if (timeline.state === "expired") continue; // an expired key's files may be deleted (docs/deployment.md)
      const reasons = loaded.problems.map((p) => p.message).join("; ");
      // A lost key is never replaced here: registries trust it (or will, for a next key). Nothing
      // is moved or generated in its place; the operator decides (docs/deployment.md, Backups).
      throw new Error(
        id === FIRST_KEY_ID
          ? reasons
          : `${KEY_SET_FILE} lists ${id} (${timeline.state}), which cannot be used: ${reasons}. Restore ${id}.key and ${id}.crt from your backup (docs/deployment.md, Backups). If they are lost for good: stop regauth, move ${KEY_SET_FILE} and every token-N.key/.crt aside, start it (with --reinitialize if token.key is gone too) and give every registry the new token-bundle.crt as rootcertbundle and restart it`,
      );
    }
    keys.push({ timeline, key: loaded.key });
  }
  return keySetOf(keys);
}

/** A set of one configured key (token.key/token.certificate): always current, never rotated here. */
export function singleKeySet(key: SigningKey, createdAtSeconds: number): KeySet {
  const entry = { id: "configured", createdAtSeconds, activatesAtSeconds: 0 };
  return keySetOf([
    { timeline: { entry, state: "current", retiresAtSeconds: null, leavesSetAtSeconds: null }, key },
  ]);
}

function keySetOf(keys: PublishedKey[]): KeySet {
  return {
    keys,
    signingKeyAt(nowSeconds) {
      let signing = keys[0];
      for (const published of keys)
        if (published.timeline.entry.activatesAtSeconds <= nowSeconds) signing = published;
      if (!signing) throw new Error("empty key set");
      return signing.key;
    },
  };
}

/** Keys still published at `nowSeconds` (a set loaded earlier may hold keys that have since expired). */
export function publishedAt(set: KeySet, nowSeconds: number): PublishedKey[] {
  return set.keys.filter(
    (k) => k.timeline.leavesSetAtSeconds === null || nowSeconds < k.timeline.leavesSetAtSeconds,
  );
}

/** PEM certificates of the published keys: what the registry's rootcertbundle names. */
export function renderBundle(keys: readonly PublishedKey[]): string {
  return (
    keys.flatMap((k) => k.key.certificates.slice(0, 1).map((c) => c.toString().trim())).join("\n") + "\n"
  );
}

/**
 * RFC 7517 JWK Set of the published keys, each with the kid tokens carry (registry 3.x looks keys
 * of its `auth.token.jwks` file up by that kid verbatim, A.7) and its certificate as x5c.
 */
export function renderJwks(keys: readonly PublishedKey[]): { keys: JWK[] } {
  return {
    keys: keys.map(({ key }) => ({
      ...key.publicJwk,
      kid: key.kid,
      alg: key.alg,
      use: "sig",
      ...(key.certificates[0] ? { x5c: [key.certificates[0].raw.toString("base64")] } : {}),
    })),
  };
}

/** Writes the bundle and JWKS (public: 0644) when their content changed; returns whether it did. */
export function writePublishedFiles(dataDir: string, keys: readonly PublishedKey[]): boolean {
  const owner = dataDirOwnerToChownTo(dataDir);
  let changed = false;
  for (const [name, text] of [
    [BUNDLE_FILE, renderBundle(keys)],
    [JWKS_FILE, `${JSON.stringify(renderJwks(keys), null, 2)}\n`],
  ] as const) {
    const path = join(dataDir, name);
    let existing: string | null = null;
    try {
      existing = readPrivateFile(path).toString("utf8");
    } catch {
      existing = null;
    }
    if (existing === text) continue;
    writePrivateFile(path, text, { exclusive: false, owner, mode: 0o644 });
    changed = true;
  }
  return changed;
}

/**
 * `regauth key rotate`: creates the next key and certificate, active `overlapSeconds` from now.
 * Refuses while a next key waits (two pending keys would make "next" ambiguous for operators).
 */
export function rotateKey(
  dataDir: string,
  nowSeconds: number,
  overlapSeconds: number,
  maxTokenLifetimeSeconds: number,
): KeyEntry {
  const entries = readKeyEntries(dataDir);
  const pending = keyTimelines(entries, nowSeconds, maxTokenLifetimeSeconds).find((t) => t.state === "next");
  if (pending)
    throw new Error(
      `key ${pending.entry.id} is already waiting to sign at ${new Date(pending.entry.activatesAtSeconds * 1000).toISOString()}; rotate again after that`,
    );
  // Above every id listed and every token-N file on disk: a key file that the state no longer
  // lists (token-keys.json moved aside by hand) is never overwritten, nor does it stop rotations.
  const onDisk = readdirSync(dataDir).flatMap((name) => ROTATED_KEY_FILE.exec(name)?.[1] ?? []);
  const highest = Math.max(0, ...entries.map((e) => Number(e.id.split("-")[1] ?? 0)), ...onDisk.map(Number));
  const entry: KeyEntry = {
    id: `${FIRST_KEY_ID}-${highest + 1}`,
    createdAtSeconds: nowSeconds,
    activatesAtSeconds: nowSeconds + overlapSeconds,
  };
  const owner = dataDirOwnerToChownTo(dataDir);
  const pair = generateSigningKeyPair();
  // Key files first, exclusive; the state file last: it is what makes the key part of the set.
  writePrivateFile(join(dataDir, `${entry.id}.key`), pair.keyPem, { exclusive: true, owner });
  writePrivateFile(join(dataDir, `${entry.id}.crt`), pair.certificatePem, { exclusive: true, owner });
  writePrivateFile(join(dataDir, KEY_SET_FILE), renderKeySetFile([...entries, entry]), {
    exclusive: false,
    owner,
  });
  return entry;
}

/**
 * The key set a running server signs with: it notices a rotation by the state file's mtime,
 * looked at no more than once a second, reloads off the request path, and rewrites the published
 * files when a rotation or the passing of time changed them.
 */
export class LiveKeySet {
  private checkedAtMs = 0;
  private stateMtimeMs: number;
  private reloading = false;
  private publishedIds: string;

  constructor(
    private set: KeySet,
    private readonly dataDir: string | null,
    private readonly options: KeySetOptions,
  ) {
    this.stateMtimeMs = dataDir ? stateMtimeMs(dataDir) : 0;
    // Empty: the first check publishes (a no-op when the start wrote the files; a retry when the disk was full).
    this.publishedIds = "";
    // Also without traffic: a retired key must leave the bundle on time, for the registry
    // restart that stops trusting it (docs/deployment.md). unref: never keeps a process alive.
    if (dataDir)
      setInterval(() => this.signingKeyAt(Math.floor(Date.now() / 1000)), REFRESH_INTERVAL_MS).unref();
  }

  get current(): KeySet {
    return this.set;
  }

  /** Replaces the set (SIGHUP reload). */
  replace(set: KeySet): void {
    this.set = set;
  }

  signingKeyAt(nowSeconds: number): SigningKey {
    const nowMs = Date.now();
    if (this.dataDir && nowMs - this.checkedAtMs >= 1000) {
      this.checkedAtMs = nowMs;
      this.refresh(this.dataDir, nowSeconds);
    }
    return this.set.signingKeyAt(nowSeconds);
  }

  private refresh(dataDir: string, nowSeconds: number): void {
    const mtime = stateMtimeMs(dataDir);
    const published = publishedAt(this.set, nowSeconds);
    if (mtime === this.stateMtimeMs) {
      if (idsOf(published) !== this.publishedIds) {
        this.publishedIds = idsOf(published);
        this.publish(dataDir, published);
      }
      return;
    }
    if (this.reloading) return;
    this.reloading = true;
    loadKeySet(dataDir, nowSeconds, this.options)
      .then((set) => {
        this.set = set;
        this.stateMtimeMs = mtime;
        this.publishedIds = idsOf(set.keys);
        this.publish(dataDir, set.keys);
        log.info("signing keys reloaded", { keys: describeKeys(set) });
      })
      .catch((error) => {
        this.stateMtimeMs = mtime; // once per change, not once a second
        log.error("cannot reload the signing keys; the previous set keeps signing", {
          error: error instanceof Error ? error.message : String(error),
        });
      })
      .finally(() => {
        this.reloading = false;
      });
  }

  private publish(dataDir: string, keys: PublishedKey[]): void {
    try {
      if (writePublishedFiles(dataDir, keys))
        log.info("published keys changed: restart the registries so they re-read rootcertbundle/jwks", {
          bundle: join(dataDir, BUNDLE_FILE),
        });
    } catch (error) {
      log.error("cannot write the published key files", {
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }
}

function stateMtimeMs(dataDir: string): number {
  try {
    return statSync(join(dataDir, KEY_SET_FILE)).mtimeMs;
  } catch {
    return 0;
  }
}

function idsOf(keys: readonly PublishedKey[]): string {
  return keys.map((k) => k.timeline.entry.id).join(",");
}

export function describeKeys(set: KeySet): string {
  return set.keys.map((k) => `${k.timeline.entry.id}:${k.timeline.state}`).join(",");
}

/** The JWK Set a server publishes at `${prefix}/.well-known/jwks.json`. */
export function publishedJwks(
  issuer: { signingKey: SigningKey; keySet?: LiveKeySet },
  nowSeconds = Math.floor(Date.now() / 1000),
): { keys: JWK[] } {
  issuer.keySet?.signingKeyAt(nowSeconds); // notices a rotation, as a token request does
  const set = issuer.keySet?.current ?? singleKeySet(issuer.signingKey, 0);
  return renderJwks(publishedAt(set, nowSeconds));
}
