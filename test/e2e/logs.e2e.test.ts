/**
 * Issue 12, item 5: `log.format: json` and `log.level: debug` on the compiled binary; one line per
 * token decision at info with the client address; and no password, token or refresh token in a
 * whole run's log, at the most verbose level.
 */
import { describe, expect, it } from "bun:test";
import { BINARY, fetchToken, run, startRegauth } from "./harness.ts";

const CONFIG = `server: {addr: "127.0.0.1:{{PORT}}"}
token: {issuer: regauth, services: [registry]}
log: {format: json, level: debug}
`;

describe("logs", () => {
  it("are JSON lines with the token decisions at info, and never hold a secret", async () => {
    const regauth = await startRegauth({ configYaml: CONFIG });
    const cli = (args: string[], stdin?: string) =>
      run([BINARY, ...args, "--data-dir", regauth.dataDir], stdin === undefined ? {} : { stdin });
    const password = "Log-Test-Passw0rd-7f3a";
    expect((await cli(["user", "add", "alice", "--password-stdin"], password)).exitCode).toBe(0);
    const created = await cli(["token", "create", "ci", "--owner", "alice", "--output", "json"]);
    expect(created.exitCode).toBe(0);
    const accessToken = /regauth_pat_[0-9A-Za-z]+/.exec(created.stdout)?.[0] ?? "";
    expect(accessToken.length).toBeGreaterThan(20);

    const realm = `${regauth.url}/auth`;
    const scopes = ["repository:alice/app:pull,push"];
    const login = await fetch(
      `${realm}?service=registry&offline_token=true&client_id=e2e&scope=${scopes[0]}`,
      {
        headers: { authorization: `Basic ${btoa(`alice:${password}`)}` },
      },
    );
    expect(login.status).toBe(200);
    const { token, refresh_token: refreshToken } = (await login.json()) as {
      token: string;
      refresh_token: string;
    };
    expect(refreshToken.length).toBeGreaterThan(20);
    const refreshed = await fetch(realm, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "refresh_token",
        service: "registry",
        refresh_token: refreshToken,
        client_id: "e2e",
      }),
    });
    expect(refreshed.status).toBe(200);
    expect((await fetchToken(realm, { service: "registry", scopes }, `alice:${accessToken}`)).status).toBe(
      200,
    );
    expect((await fetchToken(realm, { service: "registry", scopes }, `alice:${password}-wrong`)).status).toBe(
      401,
    );
    await regauth.stop();

    const lines = regauth.stderr.text.trim().split("\n");
    const records = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    for (const record of records) {
      expect(typeof record.time).toBe("string");
      expect(["debug", "info", "warn", "error"]).toContain(record.level as string);
    }
    const issued = records.filter((record) => record.msg === "token issued");
    expect(issued).toHaveLength(3);
    expect(issued[0]).toMatchObject({
      level: "info",
      account: "alice",
      authenticator: "database",
      ip: "127.0.0.1",
      client_id: "e2e",
      service: "registry",
      scopes_asked: "repository:alice/app:pull,push",
    });
    expect(records.some((record) => record.msg === "authentication failed" && record.level === "info")).toBe(
      true,
    );

    const signature = (jwt: string) => jwt.split(".")[2] ?? "";
    for (const secret of [password, accessToken, refreshToken, signature(token), accessToken.slice(12, 30)])
      expect(regauth.stderr.text).not.toContain(secret);
    expect(regauth.stdout.text).not.toContain(password);
  }, 60_000);
});
