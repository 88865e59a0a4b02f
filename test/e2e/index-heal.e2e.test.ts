/**
 * issue 11 "Tests that must exist": regauth stopped during pushes → `regauth repo sync` restores
 * the index. Literally: the registry (distribution 2.8) sends its notifications to the compiled
 * binary; a client holds a push token issued before regauth stopped (tokens live minutes) and
 * pushes while regauth is down; the registry cannot deliver those events and keeps them in memory
 * only, so restarting the registry loses them (protocol_and_peers.md §C.1). After regauth is
 * back, the index lacks the pushes until `regauth repo sync` crawls the registry.
 */
import { Database } from "bun:sqlite";
import { describe, expect, it } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { hashPassword } from "../helpers.ts";
import {
  BINARY,
  fetchToken,
  freePort,
  makeOciImage,
  type Regauth,
  run,
  skopeoPush,
  startRegauth,
  startRegistry,
} from "./harness.ts";

const regauthPort = await freePort();
const registryPort = await freePort();
const CONFIG = `
server: {addr: "127.0.0.1:${regauthPort}"}
token: {issuer: e2e-issuer, services: [registry]}
users:
  alice:
    password: "${hashPassword("alice-secret")}"
acl:
  - match: {account: alice}
    actions: ["*"]
notifications: {registry_url: "http://127.0.0.1:${registryPort}", sync_interval_seconds: 0}
`;

/** Pushes an OCI layout's image with a token in hand, as a client does between two token requests. */
async function pushWithToken(
  registryUrl: string,
  token: string,
  ociDir: string,
  repository: string,
  tag: string,
) {
  const auth = { authorization: `Bearer ${token}` };
  const index = JSON.parse(readFileSync(join(ociDir, "index.json"), "utf8")) as {
    manifests: { digest: string; mediaType: string }[];
  };
  const manifestDescriptor = index.manifests[0] as { digest: string; mediaType: string };
  const blob = (digest: string) => readFileSync(join(ociDir, "blobs/sha256", digest.slice("sha256:".length)));
  const manifest = blob(manifestDescriptor.digest);
  const parsed = JSON.parse(manifest.toString()) as {
    config: { digest: string };
    layers: { digest: string }[];
  };
  for (const digest of [parsed.config.digest, ...parsed.layers.map((l) => l.digest)]) {
    const started = await fetch(`${registryUrl}/v2/${repository}/blobs/uploads/`, {
      method: "POST",
      headers: auth,
    });
    expect(started.status).toBe(202);
    const location = new URL(started.headers.get("location") ?? "", registryUrl);
    location.searchParams.set("digest", digest);
    const put = await fetch(location, {
      method: "PUT",
      headers: { ...auth, "content-type": "application/octet-stream" },
      body: blob(digest),
    });
    expect(put.status).toBe(201);
  }
  const put = await fetch(`${registryUrl}/v2/${repository}/manifests/${tag}`, {
    method: "PUT",
    headers: { ...auth, "content-type": manifestDescriptor.mediaType },
    body: manifest,
  });
  expect(put.status).toBe(201);
  return manifestDescriptor.digest;
}

describe("regauth stopped during pushes", () => {
  it("the lost events' pushes are missing from the index until regauth repo sync restores them", async () => {
    let regauth: Regauth = await startRegauth({ configYaml: CONFIG });
    const printed = await run([
      BINARY,
      "registry-config",
      "--config",
      join(regauth.dir, "auth_config.yml"),
      "--data-dir",
      regauth.dataDir,
    ]);
    const notifications = { yaml: printed.stdout.slice(printed.stdout.indexOf("\nnotifications:") + 1) };
    const registryOptions = {
      realm: `${regauth.url}/auth`,
      issuer: "e2e-issuer",
      service: "registry",
      certificatePath: regauth.certificatePath,
      notifications,
      port: registryPort,
      storageDir: join(regauth.dir, "registry-storage"),
    };
    let registry = await startRegistry(registryOptions);
    const tagsOf = (repository: string) => {
      const db = new Database(join(regauth.dataDir, "regauth.db"), { readonly: true });
      try {
        return db
          .query<{ tag: string; digest: string }, [string]>(
            `SELECT t.tag, t.digest FROM image_tags t JOIN repositories r ON r.id = t.repository_id
             WHERE r.name = ? AND t.deleted_at IS NULL ORDER BY t.tag`,
          )
          .all(repository);
      } finally {
        db.close();
      }
    };

    // Before: a push regauth hears about.
    const first = await skopeoPush(
      makeOciImage("before\n"),
      `${registry.host}/team/app:v1`,
      "alice:alice-secret",
    );
    expect(first.exitCode, first.stderr).toBe(0);
    for (let i = 0; i < 100 && tagsOf("team/app").length === 0; i++) await Bun.sleep(100);
    expect(tagsOf("team/app").map((t) => t.tag)).toEqual(["v1"]);

    // A token in hand, then regauth stops; the pushes go on with the token.
    const token = await fetchToken(
      `${regauth.url}/auth`,
      { service: "registry", scopes: ["repository:team/app:pull,push", "repository:team/db:pull,push"] },
      "alice:alice-secret",
    );
    expect(token.status).toBe(200);
    await regauth.stop();
    const v2 = await pushWithToken(
      registry.url,
      token.token as string,
      makeOciImage("during 1\n"),
      "team/app",
      "v2",
    );
    const db1 = await pushWithToken(
      registry.url,
      token.token as string,
      makeOciImage("during 2\n"),
      "team/db",
      "1.0",
    );
    // The registry holds the undelivered events in memory only: a restart loses them.
    registry.proc.kill("SIGTERM");
    await registry.proc.exited;
    registry = await startRegistry(registryOptions);

    regauth = await startRegauth({ configYaml: CONFIG, dir: regauth.dir });
    await Bun.sleep(1500);
    expect(tagsOf("team/app").map((t) => t.tag)).toEqual(["v1"]);
    expect(tagsOf("team/db")).toEqual([]);

    const synced = await run([
      BINARY,
      "repo",
      "sync",
      "--config",
      join(regauth.dir, "auth_config.yml"),
      "--data-dir",
      regauth.dataDir,
    ]);
    expect(synced.exitCode, synced.stderr).toBe(0);
    expect(tagsOf("team/app").map((t) => [t.tag, t.digest])).toEqual([
      ["v1", expect.stringMatching(/^sha256:/)],
      ["v2", v2],
    ]);
    expect(tagsOf("team/db")).toEqual([{ tag: "1.0", digest: db1 }]);
  }, 120_000);
});
