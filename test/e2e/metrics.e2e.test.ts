/**
 * Issue 12, item 4: a real scrape of the compiled binary passes `promtool check metrics`
 * (Debian's prometheus package), the bearer token is required, and /readyz is ready.
 */
import { describe, expect, it } from "bun:test";
import { makeTempDir } from "../helpers.ts";
import { BINARY, fetchToken, run, startRegauth } from "./harness.ts";

const BEARER = "e2e-scrape-token-5b1f0c9a";
const CONFIG = `server: {addr: "127.0.0.1:{{PORT}}"}
token: {issuer: regauth, services: [registry]}
metrics: {enabled: true, bearer_token_file: "{{DIR}}/metrics-token"}
`;

describe("metrics on the compiled binary", () => {
  it("a scrape after issued and refused tokens passes promtool check metrics", async () => {
    const dir = makeTempDir("regauth-metrics-");
    await Bun.write(`${dir}/metrics-token`, `${BEARER}\n`);
    const regauth = await startRegauth({ configYaml: CONFIG, dir });
    const added = await run(
      [BINARY, "user", "add", "alice", "--password-stdin", "--data-dir", regauth.dataDir],
      {
        stdin: "alice-password",
      },
    );
    expect(added.exitCode).toBe(0);
    const realm = `${regauth.url}/auth`;
    const scopes = ["repository:alice/app:pull"];
    expect((await fetchToken(realm, { service: "registry", scopes }, "alice:alice-password")).status).toBe(
      200,
    );
    expect((await fetchToken(realm, { service: "registry", scopes }, "alice:alice-password")).status).toBe(
      200,
    );
    expect((await fetchToken(realm, { service: "registry", scopes }, "alice:wrong")).status).toBe(401);

    expect((await fetch(`${regauth.url}/metrics`)).status).toBe(401);
    const scrape = await fetch(`${regauth.url}/metrics`, { headers: { authorization: `Bearer ${BEARER}` } });
    expect(scrape.status).toBe(200);
    expect(scrape.headers.get("content-type")).toContain("text/plain");
    const text = await scrape.text();
    expect(text).toMatch(/^regauth_tokens_issued_total 2$/m);
    expect(text).toMatch(/^regauth_token_requests_refused_total\{reason="unauthorized"\} 1$/m);
    expect(text).toMatch(/^regauth_credential_cache_hits_total 1$/m);

    const check = await run(["promtool", "check", "metrics"], { stdin: text });
    expect(`${check.stdout}${check.stderr}`).toBe("");
    expect(check.exitCode).toBe(0);

    const ready = await fetch(`${regauth.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: "ready" });
    await regauth.stop();
  }, 60_000);
});
