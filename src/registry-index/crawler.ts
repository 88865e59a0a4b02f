/**
 * The crawl that heals the image index (issue 11 item 2): regauth walks the registry with a
 * token it signs for itself (sub INDEX_CRAWLER_SUBJECT) — `GET /v2/_catalog`, `GET
 * /v2/NAME/tags/list`, both following `Link` pagination (distribution docs/spec/api.md
 * "Pagination"), and `HEAD /v2/NAME/manifests/TAG` for each tag's digest, media type and size.
 *
 * Every request has a timeout, every answer a size cap, at most `concurrency` requests are in
 * flight, and a `Link` that leaves the registry's origin is not followed (it would carry our
 * token elsewhere). Failures are CrawlFailed with a sentence that says what to check; a tag or
 * repository that cannot be read makes its repository incomplete (nothing of it is deleted)
 * instead of failing the whole crawl.
 */
import { declaredLengthExceeds, readAtMost } from "../streams/read-at-most.ts";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { AppError } from "../errors.ts";
import { isResourceName } from "../scope.ts";
import type { Grant } from "../token/sign.ts";
import type { CrawledRepository, CrawledTag, CrawlResult } from "./reconcile.ts";

/** The manifest types a HEAD accepts: without the Docker ones, registry 2.x rewrites to schema 1. */
export const MANIFEST_ACCEPT = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.docker.distribution.manifest.v1+prettyjws",
].join(", ");

/** The crawl could not read the registry: unreachable, refused our token, or not a registry. */
export class CrawlFailed extends AppError {
  constructor(message: string) {
    super(502, "REGISTRY_UNREACHABLE", message);
  }
}

export interface CrawlerOptions {
  /** notifications.registry_url, e.g. http://127.0.0.1:5000 */
  registryUrl: string;
  /** notifications.registry_ca_file: PEM bundle an https registry's certificate is verified with. */
  caFile?: string;
  /** A registry token with exactly this access, for INDEX_CRAWLER_SUBJECT (src/registry-index/sync.ts). */
  signToken(access: Grant[]): string;
  /** Per request, connect to last byte. */
  timeoutMs?: number;
  /** Per answer (a catalog or tags page). */
  maxResponseBytes?: number;
  /** Requests in flight at once. */
  concurrency?: number;
  /** `n` of each page (registry 2.8's catalog maxentries defaults to 100). */
  pageSize?: number;
  fetch?: typeof fetch;
  nowMs?: () => number;
  /** Aborts the crawl (serve shutting down). */
  signal?: AbortSignal;
}

export const DEFAULT_CRAWL_TIMEOUT_MS = 15_000;
export const DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024;
export const DEFAULT_CRAWL_CONCURRENCY = 4;
const DEFAULT_PAGE_SIZE = 100;
/** Pages of one listing: 10,000 pages of 100 is a million names, more than any homelab holds. */
const MAX_PAGES = 10_000;

// distribution's reference grammar (reference/regexp.go): the names and tags a registry can hold.
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;
const MEDIA_TYPE = /^[\w.+-]+\/[\w.+-]+$/;

/**
 * The registry's grammar, host component included (src/scope.ts isResourceName): the registry
 * accepts `localhost:5000/app` and regauth grants it, so the crawl must not skip it (and then
 * reconcile away what a notification indexed).
 */
export function isRepositoryName(name: string): boolean {
  return isResourceName(name);
}

export function isTagName(tag: string): boolean {
  return TAG.test(tag);
}

/** Checks notifications.registry_url: an http(s) base URL with no credentials, query or fragment. */
export function parseRegistryUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new CrawlFailed(`notifications.registry_url ${JSON.stringify(text)} is not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new CrawlFailed(
      `notifications.registry_url must start with http:// or https://, not ${url.protocol}//`,
    );
  if (url.username !== "" || url.password !== "" || url.search !== "" || url.hash !== "")
    throw new CrawlFailed("notifications.registry_url must be a plain base URL (no user, query or fragment)");
  url.pathname = url.pathname.replace(/\/+$/, "");
  return url;
}

/** distribution refuses manifests over 4 MiB (registry/handlers/manifests.go maxManifestBodySize). */
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** Digest, media type and size from a manifest answer's headers, or from its bytes when given. */
function manifestFacts(tag: string, headers: Headers, bytes: Buffer | null): CrawledTag | null {
  const digest =
    headers.get("docker-content-digest") ??
    (bytes === null ? "" : `sha256:${createHash("sha256").update(bytes).digest("hex")}`);
  const mediaType = (headers.get("content-type") ?? "").split(";")[0]?.trim() ?? "";
  const sizeBytes = bytes === null ? Number(headers.get("content-length") ?? "") : bytes.length;
  if (
    !DIGEST.test(digest) ||
    !MEDIA_TYPE.test(mediaType) ||
    !Number.isSafeInteger(sizeBytes) ||
    sizeBytes < 0
  )
    return null;
  if (headers.get("content-length") === null && bytes === null) return null;
  return { tag, digest, mediaType, sizeBytes };
}

/** Runs at most `n` tasks at once. */
function limiter(n: number) {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (active >= n) await new Promise<void>((resolve) => waiting.push(resolve));
    active++;
    try {
      return await task();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

/** `<url>; rel="next"` of a Link header (RFC 8288), or null. */
export function nextLink(header: string | null): string | null {
  if (header === null) return null;
  for (const part of header.split(",")) {
    const match = /^\s*<([^>]*)>\s*(.*)$/.exec(part);
    if (match && /(^|;)\s*rel="?next"?\s*(;|$)/i.test(match[2] ?? "")) return match[1] ?? null;
  }
  return null;
}

/** Reads a body up to `maxBytes`; a longer one is an error, not a truncation. */
async function readCappedBytes(response: Response, maxBytes: number, what: string): Promise<Buffer> {
  const tooLarge = () => new CrawlFailed(`the registry's answer to ${what} is larger than ${maxBytes} bytes`);
  if (declaredLengthExceeds(response.headers, maxBytes)) {
    await response.body?.cancel();
    throw tooLarge();
  }
  return readAtMost(response.body, maxBytes, tooLarge);
}

async function readCapped(response: Response, maxBytes: number, what: string): Promise<string> {
  return (await readCappedBytes(response, maxBytes, what)).toString("utf8");
}

class Crawler {
  readonly base: URL;
  readonly #options: CrawlerOptions;
  readonly #fetch: typeof fetch;
  readonly #timeoutMs: number;
  readonly #maxBytes: number;
  readonly #pageSize: number;
  readonly #limit;
  readonly #tls: { ca: string } | undefined;

  constructor(options: CrawlerOptions) {
    this.#options = options;
    this.base = parseRegistryUrl(options.registryUrl);
    this.#fetch = options.fetch ?? fetch;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_CRAWL_TIMEOUT_MS;
    this.#maxBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    this.#pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
    this.#limit = limiter(Math.max(1, options.concurrency ?? DEFAULT_CRAWL_CONCURRENCY));
    if (options.caFile !== undefined) {
      try {
        this.#tls = { ca: readFileSync(options.caFile, "utf8") };
      } catch (error) {
        throw new CrawlFailed(
          `cannot read notifications.registry_ca_file ${options.caFile}: ${(error as Error).message}`,
        );
      }
    }
  }

  /** One request, with our token, a timeout and no redirects (they would carry the token). */
  async request(method: "GET" | "HEAD", path: string, access: Grant[], accept?: string) {
    // Relative to the base path ("/" or "/registry"), with exactly one slash before `v2/`.
    const url = new URL(path, `${this.base.origin}${this.base.pathname.replace(/\/+$/, "")}/`);
    // Link targets are server-given: never send the token to another origin.
    if (url.origin !== this.base.origin)
      throw new CrawlFailed(`the registry pointed to another host (${url.origin})`);
    const headers: Record<string, string> = { authorization: `Bearer ${this.#options.signToken(access)}` };
    if (accept !== undefined) headers.accept = accept;
    return this.#limit(async () => {
      let response: Response;
      try {
        response = await this.#fetch(url, {
          method,
          headers,
          redirect: "manual",
          signal: this.#options.signal
            ? AbortSignal.any([this.#options.signal, AbortSignal.timeout(this.#timeoutMs)])
            : AbortSignal.timeout(this.#timeoutMs),
          ...(this.#tls ? { tls: this.#tls } : {}),
        } as RequestInit);
      } catch (error) {
        if (this.#options.signal?.aborted) throw new CrawlFailed("the crawl was stopped");
        const reason =
          (error as Error).name === "TimeoutError"
            ? `no answer within ${this.#timeoutMs / 1000} s`
            : (error as Error).message;
        throw new CrawlFailed(`cannot reach the registry at ${this.base.href}: ${reason}`);
      }
      if (response.status === 401) {
        await response.body?.cancel();
        throw new CrawlFailed(
          `the registry at ${this.base.href} refused regauth's own token (401): it does not trust this ` +
            "server's signing key, or its auth.token issuer or service differ from regauth's; " +
            "compare its config.yml with `regauth registry-config`",
        );
      }
      return { response, url };
    });
  }

  async json(
    path: string,
    access: Grant[],
    what: string,
  ): Promise<{ body: unknown; next: string | null; status: number }> {
    const { response } = await this.request("GET", path, access, "application/json");
    const text = await readCapped(response, this.#maxBytes, what);
    if (!response.ok) return { body: null, next: null, status: response.status };
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new CrawlFailed(`the answer to ${what} is not JSON: is ${this.base.href} a registry?`);
    }
    return { body, next: nextLink(response.headers.get("link")), status: response.status };
  }

  /** Every page of a listing: `field` of each page's JSON object. */
  async pages(firstPath: string, field: "repositories" | "tags", access: Grant[], what: string) {
    const items: string[] = [];
    const visited = new Set<string>();
    let path: string | null = firstPath;
    for (let page = 0; path !== null; page++) {
      if (page >= MAX_PAGES || visited.has(path))
        throw new CrawlFailed(`the registry's pagination of ${what} does not end`);
      visited.add(path);
      const { body, next, status } = await this.json(path, access, what);
      if (status === 404 && field === "tags") return { items, status };
      if (status !== 200) return { items, status };
      const values = (body as Record<string, unknown> | null)?.[field];
      // tags/list answers `"tags": null` for a repository whose tags were all deleted.
      if (values !== null && values !== undefined && !Array.isArray(values))
        throw new CrawlFailed(`the answer to ${what} has no ${field} list: is ${this.base.href} a registry?`);
      for (const value of (values as unknown[] | null) ?? [])
        if (typeof value === "string") items.push(value);
      path = next;
    }
    return { items, status: 200 };
  }

  async catalog(): Promise<string[]> {
    const access: Grant[] = [{ type: "registry", name: "catalog", actions: ["*"] }];
    const { items, status } = await this.pages(
      `v2/_catalog?n=${this.#pageSize}`,
      "repositories",
      access,
      "/v2/_catalog",
    );
    if (status === 404)
      throw new CrawlFailed(
        `${this.base.href} has no /v2/_catalog (404): is notifications.registry_url the registry's base URL?`,
      );
    if (status !== 200)
      throw new CrawlFailed(
        `the registry answered ${status} to /v2/_catalog${status === 403 ? " (it refused the registry:catalog:* scope)" : ""}`,
      );
    return items;
  }

  async repository(name: string): Promise<CrawledRepository> {
    const access: Grant[] = [{ type: "repository", name, actions: ["pull"] }];
    const listed = await this.pages(
      `v2/${name}/tags/list?n=${this.#pageSize}`,
      "tags",
      access,
      `/v2/${name}/tags/list`,
    );
    let isIncomplete = listed.status !== 200 && listed.status !== 404;
    const names = [...new Set(listed.items)];
    const tags = await Promise.all(
      names.map(async (tag): Promise<CrawledTag | null> => {
        if (!TAG.test(tag)) return null;
        const found = await this.manifest(name, tag, access);
        if (found === "gone") return null; // deleted between the listing and now
        if (found === null) isIncomplete = true;
        return found;
      }),
    );
    if (names.some((tag) => !TAG.test(tag))) isIncomplete = true;
    return { name, tags: tags.filter((tag): tag is CrawledTag => tag !== null), isIncomplete };
  }

  /** The tag's manifest: digest, media type, size; "gone" on 404; null when it could not be read. */
  async manifest(name: string, tag: string, access: Grant[]): Promise<CrawledTag | "gone" | null> {
    const path = `v2/${name}/manifests/${tag}`;
    const head = await this.request("HEAD", path, access, MANIFEST_ACCEPT);
    await head.response.body?.cancel();
    if (head.response.status === 404) return "gone";
    if (!head.response.ok) return null;
    const found = manifestFacts(tag, head.response.headers, null);
    if (found) return found;
    // A HEAD without the digest or the length (a proxy that strips them): the manifest itself,
    // whose bytes give both (distribution: the digest is the SHA-256 of the manifest's bytes).
    const get = await this.request("GET", path, access, MANIFEST_ACCEPT);
    if (get.response.status === 404) {
      await get.response.body?.cancel();
      return "gone";
    }
    if (!get.response.ok) {
      await get.response.body?.cancel();
      return null;
    }
    const bytes = await readCappedBytes(get.response, MAX_MANIFEST_BYTES, `/${path}`).catch(() => null);
    return bytes === null || bytes.length === 0 ? null : manifestFacts(tag, get.response.headers, bytes);
  }
}

/**
 * Crawls the whole registry. Throws CrawlFailed when the catalog cannot be read (then nothing is
 * known and nothing may be reconciled); a repository that cannot be read whole is returned
 * incomplete. Names outside distribution's grammar are skipped.
 */
export async function crawlRegistry(options: CrawlerOptions): Promise<CrawlResult> {
  const startedAtUnixMs = (options.nowMs ?? Date.now)();
  const crawler = new Crawler(options);
  const names = [...new Set(await crawler.catalog())].filter(isRepositoryName);
  const repositories = await Promise.all(
    names.map((name) =>
      crawler.repository(name).catch((error: unknown) => {
        // A token refusal or an unreachable registry is the crawl's failure, not one repository's.
        if (error instanceof CrawlFailed && /refused regauth's own token|cannot reach/.test(error.message))
          throw error;
        return { name, tags: [], isIncomplete: true } satisfies CrawledRepository;
      }),
    ),
  );
  return { startedAtUnixMs, repositories };
}
