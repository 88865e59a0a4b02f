/**
 * Review of issue 11's receiver against the real registry (Debian's docker-registry, distribution
 * 2.8): the registry retries a notification that is not answered 2xx/3xx for ever, and its queue
 * for the endpoint waits meanwhile (go-events RetryingSink; protocol_and_peers.md §C.1). So an
 * event that a real registry sends and regauth refuses (400, 413) stops every later event until the
 * registry restarts. These cases are events a registry sends for what its clients may do:
 *
 * - a pull with a long User-Agent (any puller chooses it; Go's server accepts 1 MiB of headers);
 * - a push to a name whose first component is a host (`Team.example/app`, `MyTeam/app`):
 *   distribution's routes accept reference.NameRegexp, domain included, and regauth's scope
 *   grammar grants it (src/scope.ts).
 *
 * Each test then pushes an ordinary tag and expects it indexed: the queue still moves.
 */
import { Database } from "bun:sqlite";
import { afterAll, describe, expect, it } from "bun:test";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { hashPassword } from "../helpers.ts";
import { BINARY, fetchToken, makeOciImage, run, skopeoPush, startRegauth, startRegistry } from "./harness.ts";

const regauth = await startRegauth({
  configYaml: `
server: {addr: "127.0.0.1:{{PORT}}"}
token: {issuer: e2e-issuer, services: [registry]}
users:
  alice:
    password: "${hashPassword("alice-secret")}"
acl:
  - match: {account: alice}
    actions: ["*"]
`,
});
const printed = await run([
  BINARY,
  "registry-config",
  "--config",
  join(regauth.dir, "auth_config.yml"),
  "--data-dir",
  regauth.dataDir,
]);
const registry = await startRegistry({
  realm: `${regauth.url}/auth`,
  issuer: "e2e-issuer",
  service: "registry",
  certificatePath: regauth.certificatePath,
  notifications: { yaml: printed.stdout.slice(printed.stdout.indexOf("\nnotifications:") + 1) },
});
const db = new Database(join(regauth.dataDir, "regauth.db"), { readonly: true });
afterAll(() => db.close());

const tagDigest = (repository: string, tag: string) =>
  db
    .query<{ digest: string }, [string, string]>(
      "SELECT t.digest FROM image_tags t JOIN repositories r ON r.id = t.repository_id WHERE r.name = ? AND t.tag = ?",
    )
    .get(repository, tag)?.digest ?? null;

async function until(what: string, probe: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline)
      throw new Error(
        `timed out waiting for ${what}\nregistry:\n${registry.log.text.slice(-2000)}\nregauth:\n${regauth.stderr.text.slice(-2000)}`,
      );
    await Bun.sleep(50);
  }
}

async function bearer(scope: string): Promise<string> {
  const answer = await fetchToken(
    `${regauth.url}/auth`,
    { service: "registry", scopes: [scope] },
    "alice:alice-secret",
  );
  expect(answer.status, answer.text).toBe(200);
  return answer.token as string;
}

/** A push over the registry's HTTP API (skopeo's reference parser refuses host-like path components). */
async function pushByHttp(repository: string, tag: string, content: string): Promise<string> {
  const token = await bearer(`repository:${repository}:pull,push`);
  const auth = { authorization: `Bearer ${token}` };
  const blob = async (bytes: Uint8Array) => {
    const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
    const started = await fetch(`${registry.url}/v2/${repository}/blobs/uploads/`, {
      method: "POST",
      headers: auth,
    });
    expect(started.status, await started.text()).toBe(202);
    const location = new URL(started.headers.get("location") as string, registry.url);
    location.searchParams.set("digest", digest);
    const put = await fetch(location, {
      method: "PUT",
      headers: { ...auth, "content-type": "application/octet-stream" },
      body: bytes,
    });
    expect(put.status, await put.text()).toBe(201);
    return { digest, size: bytes.length };
  };
  const config = await blob(
    Buffer.from(
      JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } }),
    ),
  );
  const layer = await blob(Buffer.from(content));
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", ...layer }],
  });
  const put = await fetch(`${registry.url}/v2/${repository}/manifests/${tag}`, {
    method: "PUT",
    headers: { ...auth, "content-type": "application/vnd.oci.image.manifest.v1+json" },
    body: manifest,
  });
  expect(put.status, await put.text()).toBe(201);
  return put.headers.get("docker-content-digest") as string;
}

/** An ordinary skopeo push afterwards must reach the index: the registry's queue is not stuck. */
async function expectQueueMoves(tag: string): Promise<void> {
  const pushed = await skopeoPush(
    makeOciImage(`after ${tag}\n`),
    `${registry.host}/alice/after:${tag}`,
    "alice:alice-secret",
  );
  expect(pushed.exitCode, pushed.stderr).toBe(0);
  await until(`alice/after:${tag} in the index`, () => tagDigest("alice/after", tag) !== null);
}

describe("events a real registry sends are never refused for ever", () => {
  it("a manifest pull with a 5,000-character User-Agent", async () => {
    const pushed = await skopeoPush(
      makeOciImage("ua\n"),
      `${registry.host}/alice/ua:v1`,
      "alice:alice-secret",
    );
    expect(pushed.exitCode, pushed.stderr).toBe(0);
    await until("alice/ua:v1 in the index", () => tagDigest("alice/ua", "v1") !== null);
    const token = await bearer("repository:alice/ua:pull");
    const pulled = await fetch(`${registry.url}/v2/alice/ua/manifests/v1`, {
      headers: {
        authorization: `Bearer ${token}`,
        accept: "application/vnd.oci.image.manifest.v1+json",
        "user-agent": `curl/8 ${"x".repeat(5000)}`,
      },
    });
    expect(pulled.status).toBe(200);
    await pulled.arrayBuffer();
    await expectQueueMoves("ua");
  });

  it("a manifest pull whose User-Agent JSON-escapes to more than 1 MiB (Go writes < as \\u003c)", async () => {
    const token = await bearer("repository:alice/ua:pull");
    const pulled = await fetch(`${registry.url}/v2/alice/ua/manifests/v1`, {
      headers: {
        authorization: `Bearer ${token}`,
        accept: "application/vnd.oci.image.manifest.v1+json",
        "user-agent": "<".repeat(200_000),
      },
    });
    expect(pulled.status).toBe(200);
    await pulled.arrayBuffer();
    await expectQueueMoves("escaped");
  });

  it("pushes to names whose first component is a host, which the registry and regauth's scopes accept", async () => {
    // (A port, `localhost:5000/app`, is also the grammar, but the filesystem driver refuses its path.)
    for (const repository of ["Team.example/app", "MyTeam/app"]) {
      const digest = await pushByHttp(repository, "v1", `host-like ${repository}\n`);
      await until(`${repository}:v1 in the index`, () => tagDigest(repository, "v1") === digest);
    }
    await expectQueueMoves("hostlike");
  });
});
