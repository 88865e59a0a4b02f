/**
 * The crawler against a registry that misbehaves (test/e2e/repo-sync.e2e.test.ts crawls the real
 * one): a fake is unavoidable here, the real registry does none of this. Every case ends in one
 * clear CrawlFailed sentence or in an incomplete repository, never a hang, a stack or a token
 * sent to another host.
 */
import { afterAll, describe, expect, it } from "bun:test";
import { CrawlFailed, crawlRegistry, nextLink, parseRegistryUrl } from "../../src/registry-index/crawler.ts";

type Handler = (request: Request, url: URL) => Response | Promise<Response>;
let handler: Handler = () => new Response("{}");
const seenAuthorization: string[] = [];
const server = Bun.serve({
  port: 0,
  hostname: "127.0.0.1",
  fetch(request) {
    seenAuthorization.push(request.headers.get("authorization") ?? "");
    return handler(request, new URL(request.url));
  },
});
afterAll(() => server.stop(true));
const base = `http://127.0.0.1:${server.port}`;

const DIGEST = `sha256:${"c".repeat(64)}`;
const manifest = () =>
  new Response(null, {
    headers: {
      "docker-content-digest": DIGEST,
      "content-type": "application/vnd.oci.image.manifest.v1+json",
      "content-length": "321",
    },
  });

function crawl(options: { timeoutMs?: number; maxResponseBytes?: number } = {}) {
  return crawlRegistry({ registryUrl: base, signToken: () => "token-for-the-test", ...options });
}

async function failure(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(CrawlFailed);
    return (error as Error).message;
  }
  throw new Error("the crawl did not fail");
}

describe("crawlRegistry against a misbehaving registry", () => {
  it("refuses a Link to another host (the token would go with it)", async () => {
    handler = (_r, url) =>
      url.pathname === "/v2/_catalog"
        ? Response.json(
            { repositories: ["a/b"] },
            { headers: { link: '<http://192.0.2.1:5000/v2/_catalog?last=a%2Fb>; rel="next"' } },
          )
        : new Response("{}");
    expect(await failure(crawl())).toBe("the registry pointed to another host (http://192.0.2.1:5000)");
  });

  it("stops a pagination that loops", async () => {
    handler = () =>
      Response.json({ repositories: ["a/b"] }, { headers: { link: '</v2/_catalog?n=100>; rel="next"' } });
    expect(await failure(crawl())).toBe("the registry's pagination of /v2/_catalog does not end");
  });

  it("caps the size of an answer", async () => {
    handler = () => Response.json({ repositories: Array.from({ length: 5000 }, (_, i) => `repo/n${i}`) });
    expect(await failure(crawl({ maxResponseBytes: 10_000 }))).toBe(
      "the registry's answer to /v2/_catalog is larger than 10000 bytes",
    );
  });

  it("times out a registry that does not answer", async () => {
    handler = () => new Promise(() => {});
    expect(await failure(crawl({ timeoutMs: 300 }))).toBe(
      `cannot reach the registry at ${base}/: no answer within 0.3 s`,
    );
  });

  it("says when the answer is not a registry's", async () => {
    handler = () => new Response("<html>hello</html>", { headers: { "content-type": "text/html" } });
    expect(await failure(crawl())).toBe(`the answer to /v2/_catalog is not JSON: is ${base}/ a registry?`);
    handler = () => new Response("nope", { status: 404 });
    expect(await failure(crawl())).toMatch(/has no \/v2\/_catalog \(404\)/);
  });

  it("does not follow a redirect", async () => {
    handler = () =>
      new Response(null, { status: 302, headers: { location: "http://192.0.2.1/v2/_catalog" } });
    expect(await failure(crawl())).toBe("the registry answered 302 to /v2/_catalog");
  });

  it("explains a 401: the registry does not trust our key", async () => {
    handler = () => new Response('{"errors":[{"code":"UNAUTHORIZED"}]}', { status: 401 });
    expect(await failure(crawl())).toStartWith(`the registry at ${base}/ refused regauth's own token (401)`);
  });

  it("sends our token as Bearer on every request", async () => {
    seenAuthorization.length = 0;
    handler = (_r, url) =>
      url.pathname === "/v2/_catalog"
        ? Response.json({ repositories: ["a/b"] })
        : url.pathname.endsWith("/tags/list")
          ? Response.json({ name: "a/b", tags: ["v1"] })
          : manifest();
    await crawl();
    expect(seenAuthorization).toEqual(Array(3).fill("Bearer token-for-the-test"));
  });

  it("skips names outside distribution's grammar and marks a repository with unreadable tags incomplete", async () => {
    handler = (request, url) => {
      if (url.pathname === "/v2/_catalog")
        return Response.json({ repositories: ["good/one", "Bad/Name", "../x", "bad/two"] });
      if (url.pathname === "/v2/good/one/tags/list")
        return Response.json({ name: "good/one", tags: ["v1", "-bad"] });
      if (url.pathname === "/v2/bad/two/tags/list")
        return Response.json({ name: "bad/two", tags: ["v1", "v2"] });
      if (url.pathname === "/v2/bad/two/manifests/v2") return new Response(null, { status: 500 });
      if (request.method === "HEAD") return manifest();
      return new Response("?", { status: 404 });
    };
    const result = await crawl();
    expect(result.repositories.map((r) => [r.name, r.isIncomplete, r.tags.map((t) => t.tag)])).toEqual([
      ["good/one", true, ["v1"]],
      ["bad/two", true, ["v1"]],
    ]);
    expect(result.repositories[0]?.tags[0]).toEqual({
      tag: "v1",
      digest: DIGEST,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      sizeBytes: 321,
    });
  });

  it("falls back to GET when a HEAD lacks the digest or length, and hashes the manifest's bytes", async () => {
    const body = JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
    });
    handler = (request, url) => {
      if (url.pathname === "/v2/_catalog") return Response.json({ repositories: ["a/b"] });
      if (url.pathname.endsWith("/tags/list")) return Response.json({ name: "a/b", tags: ["v1"] });
      const headers = { "content-type": "application/vnd.oci.image.manifest.v1+json" };
      return request.method === "HEAD" ? new Response(null, { headers }) : new Response(body, { headers });
    };
    const { createHash } = await import("node:crypto");
    expect((await crawl()).repositories[0]?.tags).toEqual([
      {
        tag: "v1",
        digest: `sha256:${createHash("sha256").update(body).digest("hex")}`,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        sizeBytes: Buffer.byteLength(body),
      },
    ]);
  });

  it("reads a repository whose tags were all deleted (tags: null) as one with no tags", async () => {
    handler = (_r, url) =>
      url.pathname === "/v2/_catalog"
        ? Response.json({ repositories: ["a/b"] })
        : Response.json({ name: "a/b", tags: null });
    expect((await crawl()).repositories).toEqual([{ name: "a/b", tags: [], isIncomplete: false }]);
  });
});

describe("parseRegistryUrl and nextLink", () => {
  it.each([
    ["not a url", "is not a URL"],
    ["ftp://host", "must start with http:// or https://"],
    ["http://user:pw@host", "must be a plain base URL"],
    ["http://host/?x=1", "must be a plain base URL"],
  ])("refuses %p", (text, message) => {
    expect(() => parseRegistryUrl(text)).toThrow(message);
  });

  it.each([
    ['</v2/_catalog?last=a&n=2>; rel="next"', "/v2/_catalog?last=a&n=2"],
    ['<http://x/a>; rel="prev", </b>; rel=next', "/b"],
    ['</a>; rel="nextish"', null],
    [null, null],
  ])("reads %p", (header, expected) => {
    expect(nextLink(header)).toBe(expected);
  });
});
