/**
 * The CLI remote (issue 10 item 5), with the compiled binary against a running `regauth serve`
 * and the real registry: regauth login, add a user, grant, create a token, push with skopeo
 * using only the token, revoke it, the next push refused; a robot pushing with its own token;
 * the same command offline and remote prints the same thing; logout, then remote commands fail
 * with a clear message.
 */
import { describe, expect, it } from "bun:test";
import { statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTempDir } from "../helpers.ts";
import { BINARY, makeOciImage, run, skopeoPush, startRegauth, startRegistry } from "./harness.ts";

describe("regauth login, then the management commands through the API", async () => {
  const regauth = await startRegauth({
    configYaml:
      'server: {addr: "127.0.0.1:{{PORT}}"}\ntoken: {issuer: regauth, expiration: 300, services: [registry]}\n',
  });
  const registry = await startRegistry({
    realm: `${regauth.url}/auth`,
    issuer: "regauth",
    service: "registry",
    certificatePath: regauth.certificatePath,
  });
  const adminPassword = (await regauth.stdout.waitFor(/^password: (\S+)$/m))[1] as string;
  const home = makeTempDir("cli-home-");
  // A clean user environment: no REGAUTH_TOKEN, the config directory in a temporary home.
  const env = { XDG_CONFIG_HOME: join(home, "config"), HOME: home, REGAUTH_TOKEN: "" };
  const credentials = join(home, "config", "regauth", "credentials.json");
  const cli = (args: string[], stdin?: string) =>
    run([BINARY, ...args], { env, ...(stdin === undefined ? {} : { stdin }), timeoutMs: 30_000 });
  const offline = (args: string[]) => cli([...args, "--data-dir", regauth.dataDir]);
  const image = makeOciImage("pushed with an access token\n");
  let savedLogin = "";

  /**
   * The command prints the same through the API and on the data directory. Logins and token use
   * update last-login times in the background (within a second), so a pair that straddles such a
   * write is taken again once.
   */
  async function expectSameOutput(args: string[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const remote = await cli(args);
      const local = await offline(args);
      expect(remote.exitCode).toBe(0);
      expect(local.exitCode).toBe(0);
      if (remote.stdout === local.stdout || attempt === 2) {
        expect(remote.stdout).toBe(local.stdout);
        return;
      }
      await Bun.sleep(1500);
    }
  }

  it("logs in with the password on stdin and stores only a token, 0600", async () => {
    const login = await cli(
      ["login", regauth.url, "--username", "admin", "--password-stdin"],
      `${adminPassword}\n`,
    );
    expect(login.stderr).toBe("");
    expect(login.exitCode).toBe(0);
    expect(login.stdout).toContain(`logged in to ${regauth.url} as admin`);
    expect(statSync(credentials).mode & 0o777).toBe(0o600);
    const stored = JSON.parse(await Bun.file(credentials).text()) as {
      url: string;
      token: string;
      token_id: number;
    };
    expect(stored.url).toBe(regauth.url);
    expect(stored.token).toStartWith("regauth_pat_");
    expect(JSON.stringify(stored)).not.toContain(adminPassword);
    savedLogin = await Bun.file(credentials).text();
    const tokens = await cli(["token", "list", "--output", "json"]);
    expect(JSON.parse(tokens.stdout)).toContainEqual(
      expect.objectContaining({ id: stored.token_id, owner: "admin", scopes: ["api"] }),
    );
    expect((JSON.parse(tokens.stdout) as { name: string }[])[0]?.name).toStartWith("regauth-cli@");
  });

  it("adds a user, a group and grants remotely", async () => {
    const added = await cli(["user", "add", "alice", "--password-stdin"], "alice-password\n");
    expect(added.stderr).toBe("");
    expect(added.stdout).toBe("created user alice\n");
    for (const args of [
      ["group", "create", "devs"],
      ["group", "add-member", "devs", "alice"],
      ["perm", "grant", "alice", "team/*", "write"],
      ["perm", "grant", "@devs", "shared/*", "read"],
    ]) {
      const result = await cli(args);
      expect({ args, exit: result.exitCode, stderr: result.stderr }).toEqual({ args, exit: 0, stderr: "" });
    }
  });

  it("prints the same thing offline and remote (tables and JSON)", async () => {
    for (const command of [
      ["user", "list"],
      ["perm", "list"],
      ["group", "list"],
      ["perm", "list", "--user", "alice"],
    ]) {
      for (const format of [[], ["--output", "json"]]) {
        await expectSameOutput([...command, ...format]);
      }
    }
    expect((await cli(["perm", "list"])).stdout).toMatch(/alice\s+team\/\*\s+write/);
  });

  let tokenId = 0;
  let secret = "";

  it("creates a token for alice that pushes with skopeo as the only credential", async () => {
    const created = await cli([
      "token",
      "create",
      "ci",
      "--owner",
      "alice",
      "--scopes",
      "pull,push",
      "--repositories",
      "team/*",
      "--registry",
      registry.host,
    ]);
    expect(created.exitCode).toBe(0);
    secret = created.stdout.match(/^ {2}(regauth_pat_\w+)$/m)?.[1] ?? "";
    tokenId = Number(created.stdout.match(/^created token (\d+) "ci" for alice/)?.[1]);
    expect(secret).not.toBe("");
    expect(created.stdout).toContain(`docker login ${registry.host} --username alice`);
    const pushed = await skopeoPush(image, `${registry.host}/team/app:v1`, `whoever:${secret}`);
    expect(pushed.stderr).toBe("");
    expect(pushed.exitCode).toBe(0);
    // The token's patterns limit it below alice's rights: alice/* is hers, but not the token's.
    const outside = await skopeoPush(image, `${registry.host}/alice/app:v1`, `alice:${secret}`);
    expect(outside.exitCode).not.toBe(0);
  });

  it("revokes it; the next push is refused at once", async () => {
    const revoked = await cli(["token", "revoke", String(tokenId)]);
    expect(revoked.stdout).toBe(`revoked token ${tokenId} "ci" of alice\n`);
    const started = performance.now();
    const refused = await skopeoPush(image, `${registry.host}/team/app:v2`, `alice:${secret}`);
    console.log(`push refused ${Math.round(performance.now() - started)} ms after the revoke returned`);
    expect(refused.exitCode).not.toBe(0);
    expect(refused.stderr).toMatch(/unauthorized|authentication required|denied/i);
  });

  it("a robot of namespace team pushes with its own token from a CI-like script", async () => {
    expect(
      (await cli(["robot", "create", "ci", "--namespace", "team", "--description", "CI"])).exitCode,
    ).toBe(0);
    expect((await cli(["perm", "grant", "team+ci", "team/*", "write"])).exitCode).toBe(0);
    const created = await cli([
      "robot",
      "token",
      "create",
      "team+ci",
      "push",
      "--scopes",
      "push",
      "--repositories",
      "team/*",
      "--output",
      "json",
    ]);
    expect(created.exitCode).toBe(0);
    const token = JSON.parse(created.stdout) as { secret: string; owner: string };
    expect(token.owner).toBe("team+ci");
    const script = join(makeTempDir("ci-"), "ci.sh");
    writeFileSync(
      script,
      `set -eu\nskopeo copy --dest-tls-verify=false --dest-creds "ci:$ROBOT_TOKEN" oci:${image}:latest docker://${registry.host}/team/robot:1\n`,
    );
    const ci = await run(["sh", script], { env: { ROBOT_TOKEN: token.secret } });
    expect(ci.stderr).toBe("");
    expect(ci.exitCode).toBe(0);
    const robots = await cli(["robot", "list"]);
    expect(robots.stdout).toMatch(/^team\+ci\s+team\s+enabled/m);
    await expectSameOutput(["robot", "list"]);
  });

  it("shows the changes and the refused push in the audit log, offline and remote", async () => {
    // The audit log is written in the background (token decisions are coalesced for a second,
    // then batched): poll until the refused pushes have landed, for up to 10 s.
    type Event = { kind: string; outcome: string; actor: string };
    let remote = await cli(["audit", "--output", "json"]);
    let events: Event[] = [];
    for (const deadline = Date.now() + 10_000; ; await Bun.sleep(250)) {
      remote = await cli(["audit", "--output", "json"]);
      expect(remote.exitCode).toBe(0);
      events = JSON.parse(remote.stdout) as Event[];
      if (events.filter((e) => e.outcome === "denied").length >= 2 || Date.now() > deadline) break;
    }
    const kinds = events.map((e) => e.kind);
    for (const kind of ["user.created", "permission.granted", "access-token.created", "access-token.revoked"])
      expect(kinds).toContain(kind);
    // The push with the revoked token, and the one outside the token's patterns: denied, logged.
    expect(events.filter((e) => e.outcome === "denied").length).toBeGreaterThanOrEqual(2);
    const table = await cli(["audit", "--kind", "user.created"]);
    expect(table.stdout).toMatch(
      /^TIME\s+KIND\s+OUTCOME\s+ACTOR\s+REPOSITORY\s+IP\s+DETAILS\n\S+Z\s+user\.created\s+ok\s+admin\s/,
    );
    const local = await offline(["audit", "--kind", "access-token.revoked", "--output", "json"]);
    expect(JSON.parse(local.stdout)).toHaveLength(1);
    expect(remote.stdout).not.toContain(secret);
  });

  it("logout revokes the token and forgets it; remote commands then say what to do", async () => {
    const logout = await cli(["logout"]);
    expect(logout.exitCode).toBe(0);
    expect(logout.stdout).toMatch(/^logged out of .*: revoked token \d+, deleted /);
    const notLoggedIn = await cli(["user", "list", "--remote", regauth.url]);
    expect(notLoggedIn.exitCode).toBe(1);
    expect(notLoggedIn.stderr).toBe(
      `regauth user list: not logged in to ${regauth.url}: run regauth login ${regauth.url} (or set REGAUTH_TOKEN)\n`,
    );
    // The old file put back: its token is revoked, and the message says so.
    writeFileSync(credentials, savedLogin, { mode: 0o600 });
    const stale = await cli(["user", "list"]);
    expect(stale.exitCode).toBe(1);
    expect(stale.stderr).toMatch(/^regauth user list: .* refused the stored token .*run regauth login/);
  });

  it("usage errors exit 2 before anything is asked", async () => {
    const result = await cli(["token", "create", "ci", "--secret", "x"]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain("unknown option --secret");
  });
});
