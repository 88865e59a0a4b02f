/**
 * The catalog's pages (src/registry-index/catalog.ts): keyset order, the pattern's prefix scan,
 * and the bound on the work one page costs when the caller may pull little of a large index.
 */
import { describe, expect, it } from "bun:test";
import type { Authorizer } from "../../src/authz/authorizer.ts";
import {
  MAX_CHECKS_PER_PAGE,
  MAX_CHECKS_PER_PAGE_WITH_PROGRAM,
  parseCatalogPattern,
  pullCheckFor,
  visibleRepositories,
} from "../../src/registry-index/catalog.ts";
import { recordManifestPush } from "../../src/registry-index/index-store.ts";
import { tempDatabase } from "../accounts-helpers.ts";

function indexWith(names: string[]) {
  const { db } = tempDatabase();
  db.transaction(() => {
    for (const repository of names)
      recordManifestPush(db, {
        repository,
        tag: "v1",
        digest: `sha256:${"a".repeat(64)}`,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        sizeBytes: 1,
        pusher: null,
        pusherAddress: null,
        atUnixMs: 1_000_000,
        eventId: repository,
        source: "sync",
      });
  })();
  return db;
}

describe("visibleRepositories", () => {
  const names = Array.from(
    { length: 5000 },
    (_, i) => `ns${String(i % 50).padStart(2, "0")}/app${String(i).padStart(4, "0")}`,
  );
  const db = indexWith(names);
  // The caller may pull 7 repositories spread over the index.
  const allowed = new Set([
    names[3],
    names[777],
    names[1999],
    names[2500],
    names[3001],
    names[4321],
    names[4999],
  ]);

  it("bounds the checks per page and still finds everything by following the cursor", async () => {
    const askedPerPage: number[] = [];
    const found: string[] = [];
    let after: string | undefined;
    const startedMs = performance.now();
    for (let page = 0; page < 100; page++) {
      let asked = 0;
      const result = await visibleRepositories(
        db,
        { glob: null, limit: 100, ...(after !== undefined ? { afterName: after } : {}) },
        async (batch) => {
          asked += batch.length;
          return new Set(batch.filter((name) => allowed.has(name)));
        },
      );
      askedPerPage.push(asked);
      found.push(...result.repositories.map((r) => r.name));
      if (result.nextAfterName === null) break;
      after = result.nextAfterName;
    }
    const elapsedMs = performance.now() - startedMs;
    expect(found).toEqual([...allowed].sort() as string[]);
    expect(Math.max(...askedPerPage)).toBeLessThanOrEqual(MAX_CHECKS_PER_PAGE);
    // One page per MAX_CHECKS_PER_PAGE names, and possibly an empty last one after a full budget.
    expect(askedPerPage.length).toBeLessThanOrEqual(Math.ceil(names.length / MAX_CHECKS_PER_PAGE) + 1);
    console.log(
      `5000 repositories, 7 visible: ${askedPerPage.length} pages, ${elapsedMs.toFixed(0)} ms in all`,
    );
  });

  it("asks an ext_authz program about at most 16 names a page (what one token request may cost), not 1000", async () => {
    let runs = 0;
    const program = {
      name: "ext_authz",
      authorize: async () => {
        runs++;
        return [];
      },
    } as unknown as Authorizer;
    const check = pullCheckFor(
      [program],
      { account: "anyone", labels: {}, isAnonymous: false, authenticator: "database" },
      "registry",
      null,
    );
    expect(check.maxChecksPerPage).toBe(MAX_CHECKS_PER_PAGE_WITH_PROGRAM);
    const page = await visibleRepositories(db, { glob: null, limit: 100 }, check);
    expect(page.repositories).toEqual([]);
    expect(page.nextAfterName).not.toBeNull();
    expect(runs).toBe(MAX_CHECKS_PER_PAGE_WITH_PROGRAM);
    expect(runs).toBeLessThanOrEqual(16);
  });

  it("scans only the pattern's literal prefix and matches the glob", async () => {
    let asked = 0;
    const glob = parseCatalogPattern("ns07/app0[01]?7");
    if (typeof glob === "string") throw new Error(glob);
    const result = await visibleRepositories(db, { glob, limit: 500 }, async (batch) => {
      asked += batch.length;
      return new Set(batch);
    });
    expect(result.repositories.map((r) => r.name)).toEqual([
      "ns07/app0007",
      "ns07/app0057",
      "ns07/app0107",
      "ns07/app0157",
    ]);
    expect(asked).toBe(4);
    expect(result.nextAfterName).toBeNull();
  });

  it("gives an administrator (all) a full page and a cursor exactly when more remain", async () => {
    const first = await visibleRepositories(db, { glob: null, limit: 500 }, "all");
    expect(first.repositories.length).toBe(500);
    expect(first.nextAfterName).toBe(first.repositories.at(-1)?.name ?? "");
    const small = indexWith(["a/x", "b/x"]);
    expect(await visibleRepositories(small, { glob: null, limit: 2 }, "all")).toMatchObject({
      nextAfterName: null,
    });
  });
});

describe("parseCatalogPattern", () => {
  it.each([
    ["team/*", true],
    ["*/app", true],
    ["team/[a-c]*", true],
    ["team/a?p", true],
    ["(team|other)/.+", false],
    ["team/app$", false],
    ["Team/*", false],
    ["team/[a", false],
    ["team\\", false],
    ["a\u0000b", false],
    ["x".repeat(256), false],
  ])("%p is a pattern: %p", (pattern, ok) => {
    expect(typeof parseCatalogPattern(pattern) !== "string").toBe(ok);
  });
});
