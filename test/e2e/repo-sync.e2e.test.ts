/**
 * The crawl that heals the image index and the catalog filtered by permission (issue 11 items 2
 * and 3), with the compiled binary and the real registry (distribution 2.8) configured WITHOUT
 * notifications: every push is a lost event, as if regauth had been stopped during the pushes.
 * `regauth repo sync` restores the index with the registry's digests; a tag deleted in the
 * registry is marked deleted by the next sync; `regauth repo list` shows an administrator
 * everything, a `team/*` user (remote CLI after `regauth login`) their namespace, and anonymous
 * callers (the API without credentials) the public repositories.
 */
import { describe, expect, it } from "bun:test";
import { join } from "node:path";
import { writeFileSync } from "node:fs";
import { makeTempDir } from "../helpers.ts";
import {
  BINARY,
  freePort,
  issueServerCertificate,
  makeTestCa,
  makeOciImage,
  makeSelfSignedKeyPair,
  run,
  skopeoPush,
  startRegauth,
  startRegistry,
} from "./harness.ts";

describe("regauth repo sync and repo list against the real registry", async () => {
  const registryPort = await freePort();
  const registryUrl = `http://127.0.0.1:${registryPort}`;
  const regauth = await startRegauth({
    configYaml: [
      'server: {addr: "127.0.0.1:{{PORT}}"}',
      "token: {issuer: regauth, expiration: 300, services: [registry]}",
      // No periodic crawl in this test: every sync is one the test runs.
      `notifications: {registry_url: "${registryUrl}", sync_interval_seconds: 0}`,
      "",
    ].join("\n"),
  });
  const configPath = join(regauth.dir, "auth_config.yml");
  const registry = await startRegistry({
    realm: `${regauth.url}/auth`,
    issuer: "regauth",
    service: "registry",
    certificatePath: regauth.certificatePath,
    port: registryPort,
  });
  const adminPassword = (await regauth.stdout.waitFor(/^password: (\S+)$/m))[1] as string;
  const admin = `admin:${adminPassword}`;
  const home = makeTempDir("repo-home-");
  const envFor = (who: string) => ({
    XDG_CONFIG_HOME: join(home, who, "config"),
    HOME: join(home, who),
    REGAUTH_TOKEN: "",
  });
  const cli = (who: string, args: string[], stdin?: string) =>
    run([BINARY, ...args], {
      env: envFor(who),
      ...(stdin === undefined ? {} : { stdin }),
      timeoutMs: 60_000,
    });
  const offline = (args: string[]) =>
    cli("root", [...args, "--config", configPath, "--data-dir", regauth.dataDir]);
  const images = {
    "team/app:v1": makeOciImage("team/app v1\n"),
    "team/app:v2": makeOciImage("team/app v2\n"),
    "team/db:latest": makeOciImage("team/db\n"),
    "other/x:1": makeOciImage("other/x\n"),
  };

  async function registryDigest(reference: string): Promise<string> {
    const inspected = await run([
      "skopeo",
      "inspect",
      "--tls-verify=false",
      "--creds",
      admin,
      `docker://${registry.host}/${reference}`,
    ]);
    expect(inspected.exitCode).toBe(0);
    return (JSON.parse(inspected.stdout) as { Digest: string }).Digest;
  }

  it("pushes while the index knows nothing (the registry sends no notifications)", async () => {
    for (const [reference, dir] of Object.entries(images)) {
      const pushed = await skopeoPush(dir, `${registry.host}/${reference}`, admin);
      expect(pushed.stderr).toBe("");
      expect(pushed.exitCode).toBe(0);
    }
    const before = await offline(["repo", "list", "--output", "json"]);
    expect(before.exitCode).toBe(0);
    expect(JSON.parse(before.stdout)).toEqual([]);
  });

  it("repo sync (offline) indexes every repository and tag with the registry's digests", async () => {
    const sync = await offline(["repo", "sync"]);
    expect(sync.stderr).toBe("");
    expect(sync.exitCode).toBe(0);
    expect(sync.stdout).toMatch(
      /^synced 3 repositories, 4 tags in \d+\.\d s: 4 added, 0 moved, 0 tags deleted, 0 repositories deleted\n$/,
    );
    const list = await offline(["repo", "list", "--output", "json"]);
    expect((JSON.parse(list.stdout) as { name: string }[]).map((r) => r.name)).toEqual([
      "other/x",
      "team/app",
      "team/db",
    ]);
    for (const reference of Object.keys(images)) {
      const shown = await offline(["repo", "show", reference, "--output", "json"]);
      expect(shown.exitCode).toBe(0);
      const tag = JSON.parse(shown.stdout) as Record<string, unknown>;
      expect(tag.digest).toBe(await registryDigest(reference));
      expect(tag).toMatchObject({
        media_type: "application/vnd.oci.image.manifest.v1+json",
        pushed_by: null,
        pull_command: `docker pull ${registry.host}/${reference}`,
      });
      expect(tag.size_bytes as number).toBeGreaterThan(100);
    }
    // Nothing changed since: a second sync finds nothing to do.
    const again = await offline(["repo", "sync", "--output", "json"]);
    expect(JSON.parse(again.stdout)).toMatchObject({
      added: 0,
      moved: 0,
      deleted_tags: 0,
      repositories: 3,
      tags: 4,
    });
    const table = await offline(["repo", "show", "team/app"]);
    expect(table.stdout).toContain("tags:        2");
    expect(table.stdout).toMatch(/^v1 +sha256:[0-9a-f]{12} /m);
  });

  it("the next sync (remote, an administrator through the API) marks a tag deleted in the registry", async () => {
    const deleted = await run([
      "skopeo",
      "delete",
      "--tls-verify=false",
      "--creds",
      admin,
      `docker://${registry.host}/team/app:v2`,
    ]);
    expect(deleted.exitCode).toBe(0);
    const login = await cli(
      "root",
      ["login", regauth.url, "--username", "admin", "--password-stdin"],
      `${adminPassword}\n`,
    );
    expect(login.exitCode).toBe(0);
    const sync = await cli("root", ["repo", "sync"]);
    expect(sync.stderr).toBe("");
    expect(sync.stdout).toMatch(/: 0 added, 0 moved, 1 tags deleted, 0 repositories deleted\n$/);
    const tags = await cli("root", ["repo", "tags", "team/app", "--output", "json"]);
    expect((JSON.parse(tags.stdout) as { tag: string }[]).map((t) => t.tag)).toEqual(["v1"]);
    const gone = await cli("root", ["repo", "show", "team/app:v2"]);
    expect(gone.exitCode).toBe(1);
    expect(gone.stderr).toBe('regauth repo show: no tag "v2" in "team/app"\n');
    const audit = await cli("root", ["audit", "--kind", "repository.synced", "--output", "json"]);
    expect(audit.stderr).toBe("");
    const events = JSON.parse(audit.stdout) as {
      actor: string;
      outcome: string;
      details: Record<string, unknown>;
    }[];
    expect(events.map((e) => [e.actor, e.outcome, e.details.deleted_tags])).toEqual([
      ["local-admin", "ok", 0],
      ["local-admin", "ok", 0],
      ["admin", "ok", 1],
    ]);
  });

  it("repo list shows an administrator all, a team/* user their namespace, anonymous callers the public ones", async () => {
    expect(
      (await cli("root", ["user", "add", "alice", "--password-stdin"], "alice-password-1\n")).exitCode,
    ).toBe(0);
    expect((await cli("root", ["perm", "grant", "alice", "team/*", "read"])).exitCode).toBe(0);
    expect((await cli("root", ["perm", "grant", "*", "other/x", "read"])).exitCode).toBe(0);
    const asAdmin = await cli("root", ["repo", "list"]);
    expect(
      asAdmin.stdout
        .split("\n")
        .slice(1, -1)
        .map((line) => line.split(" ")[0]),
    ).toEqual(["other/x", "team/app", "team/db"]);
    const login = await cli(
      "alice",
      ["login", regauth.url, "--username", "alice", "--password-stdin"],
      "alice-password-1\n",
    );
    expect(login.exitCode).toBe(0);
    const asAlice = await cli("alice", ["repo", "list", "--output", "json"]);
    expect(asAlice.exitCode).toBe(0);
    expect((JSON.parse(asAlice.stdout) as { name: string }[]).map((r) => r.name)).toEqual([
      "other/x",
      "team/app",
      "team/db",
    ]);
    const teamOnly = await cli("alice", ["repo", "list", "team/*", "--output", "json"]);
    expect((JSON.parse(teamOnly.stdout) as { name: string }[]).map((r) => r.name)).toEqual([
      "team/app",
      "team/db",
    ]);
    const anonymous = await fetch(`${regauth.url}/api/v1/repositories`);
    expect(anonymous.status).toBe(200);
    expect(((await anonymous.json()) as { items: { name: string }[] }).items.map((r) => r.name)).toEqual([
      "other/x",
    ]);
    const hidden = await fetch(`${regauth.url}/api/v1/repositories/team%2Fapp`);
    expect(hidden.status).toBe(404);
    // Alice may not sync: administrators only.
    const refused = await cli("alice", ["repo", "sync"]);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toBe("regauth repo sync: only an administrator can sync the image index\n");
  });

  it("follows the registry's Link pagination of the catalog and of tags/list (pages of one)", async () => {
    const { loadKeySet } = await import("../../src/token/key-set.ts");
    const { crawlRegistry } = await import("../../src/registry-index/crawler.ts");
    const { signRegistryToken } = await import("../../src/token/sign.ts");
    const { INDEX_CRAWLER_SUBJECT } = await import("../../src/registry-index/changes.ts");
    const now = Math.floor(Date.now() / 1000);
    const keys = await loadKeySet(regauth.dataDir, now, {
      useThumbprintKid: false,
      maxTokenLifetimeSeconds: 300,
    });
    const requests: string[] = [];
    const crawl = (pageSize: number) =>
      crawlRegistry({
        registryUrl: registry.url,
        pageSize,
        concurrency: 1,
        fetch: ((url: URL, init: RequestInit) => {
          requests.push(`${init.method} ${url.pathname}${url.search}`);
          return fetch(url, init);
        }) as typeof fetch,
        signToken: (access) =>
          signRegistryToken(keys.signingKeyAt(now), {
            issuer: "regauth",
            subject: INDEX_CRAWLER_SUBJECT,
            audience: "registry",
            access,
            issuedAtSeconds: now,
            ttlSeconds: 60,
          }),
      });
    const whole = await crawl(100);
    requests.length = 0;
    const paged = await crawl(1);
    const summary = (result: typeof whole) =>
      result.repositories.map((r) => [
        r.name,
        r.isIncomplete,
        r.tags.map((t) => `${t.tag}@${t.digest}`).sort(),
      ]);
    expect(summary(paged)).toEqual(summary(whole));
    expect(summary(whole).map(([name]) => name)).toEqual(["other/x", "team/app", "team/db"]);
    // One catalog page per repository (and a last, empty or short, one).
    expect(requests.filter((r) => r.startsWith("GET /v2/_catalog")).length).toBeGreaterThanOrEqual(3);
    expect(requests.filter((r) => r.startsWith("HEAD /v2/")).length).toBe(3);
  });

  it("crawls an https registry verified with registry_ca_file, and refuses one it cannot verify", async () => {
    const ca = await makeTestCa();
    const serverCert = await issueServerCertificate(ca, "registry");
    const tlsRegistry = await startRegistry({
      realm: `${regauth.url}/auth`,
      issuer: "regauth",
      service: "registry",
      certificatePath: regauth.certificatePath,
      tls: { certificate: serverCert.certificate, key: serverCert.key, caFile: ca.certificate },
    });
    const pushed = await skopeoPush(images["team/db:latest"], `${tlsRegistry.host}/tls/only:v1`, admin, {
      certDir: ca.certDir,
    });
    expect(pushed.exitCode).toBe(0);
    const configWith = (extra: string) => {
      const path = join(makeTempDir("tls-config-"), "config.yml");
      writeFileSync(
        path,
        `token: {issuer: regauth, expiration: 300, services: [registry]}
notifications: {registry_url: "${tlsRegistry.url}"${extra}}
`,
      );
      return path;
    };
    const unverified = await cli("root", [
      "repo",
      "sync",
      "--config",
      configWith(""),
      "--data-dir",
      makeTempDir("tls-data-"),
    ]);
    expect(unverified.exitCode).toBe(1);
    expect(unverified.stderr).toStartWith(
      `regauth repo sync: cannot reach the registry at ${tlsRegistry.url}/: `,
    );
    // The same data directory's key: the registry trusts regauth's certificate.
    const verified = await cli("root", [
      "repo",
      "sync",
      "--config",
      configWith(`, registry_ca_file: "${ca.certificate}"`),
      "--data-dir",
      regauth.dataDir,
      "--output",
      "json",
    ]);
    expect(verified.stderr).toBe("");
    // Pointed at another registry, the index follows it: the first registry's three repositories
    // are gone from this one's catalog, so they are deleted (repository deletion, end to end).
    expect(JSON.parse(verified.stdout)).toMatchObject({
      repositories: 1,
      tags: 1,
      added: 1,
      deleted_tags: 3,
      deleted_repositories: 3,
    });
    const list = await offline(["repo", "list", "--output", "json"]);
    expect((JSON.parse(list.stdout) as { name: string }[]).map((r) => r.name)).toEqual(["tls/only"]);
  });

  it("says in one line why a sync failed: a registry that does not trust our key, or none at all", async () => {
    const other = await makeSelfSignedKeyPair(makeTempDir("other-key-"), "other", "ec-p256-sec1");
    const distrustful = await startRegistry({
      realm: `${regauth.url}/auth`,
      issuer: "regauth",
      service: "registry",
      certificatePath: other.certificate,
    });
    const withRegistry = (url: string) => {
      const path = join(makeTempDir("sync-config-"), "config.yml");
      writeFileSync(
        path,
        `token: {issuer: regauth, expiration: 300, services: [registry]}\nnotifications: {registry_url: "${url}"}\n`,
      );
      return cli("root", ["repo", "sync", "--config", path, "--data-dir", regauth.dataDir]);
    };
    const untrusted = await withRegistry(distrustful.url);
    expect(untrusted.exitCode).toBe(1);
    expect(untrusted.stderr).toStartWith(
      `regauth repo sync: the registry at ${distrustful.url}/ refused regauth's own token (401)`,
    );
    const nobody = await withRegistry(`http://127.0.0.1:${await freePort()}`);
    expect(nobody.exitCode).toBe(1);
    expect(nobody.stderr).toMatch(
      /^regauth repo sync: cannot reach the registry at http:\/\/127\.0\.0\.1:\d+\/: .+\n$/,
    );
    const bad = await withRegistry("ftp://example.com");
    expect(bad.stderr).toBe(
      "regauth repo sync: notifications.registry_url must start with http:// or https://, not ftp://\n",
    );
    for (const result of [untrusted, nobody, bad]) expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it("serve syncs on its own shortly after start (the interval itself: test/unit/periodic-sync.test.ts)", async () => {
    await regauth.stop();
    // The same data directory, now with the periodic crawl on: its first run comes ~5 s after start.
    const restarted = await startRegauth({
      dir: regauth.dir,
      configYaml: [
        'server: {addr: "127.0.0.1:{{PORT}}"}',
        "token: {issuer: regauth, expiration: 300, services: [registry]}",
        `notifications: {registry_url: "${registryUrl}", sync_interval_seconds: 3600}`,
        "",
      ].join("\n"),
    });
    const line = await restarted.stderr.waitFor(/msg="registry sync" .*\n/, 20_000);
    expect(line[0]).toContain("repositories=3");
    // The index follows the first registry again: its repositories back, tls/only gone.
    const list = await offline(["repo", "list", "--output", "json"]);
    expect((JSON.parse(list.stdout) as { name: string }[]).map((r) => r.name)).toEqual([
      "other/x",
      "team/app",
      "team/db",
    ]);
    await restarted.stop();
    expect(restarted.stderr.text).not.toContain("registry sync failed");
  });
});
