/**
 * Issue 12 item 6: an idle serve loads only what its config uses. Heavy packages that serve only
 * needs for a configured section (LDAP) stay unloaded without it; the check runs serve from
 * source in a process of its own (test/fixtures/serve-loaded-modules.ts), whose module registry
 * is what the compiled binary's would hold, since the bundle keeps require() and import() lazy.
 */
import { describe, expect, it } from "bun:test";
import { join } from "node:path";
import { makeTempDir } from "../helpers.ts";
import { freePort } from "../e2e/free-port.ts";

async function packagesLoadedByServe(configYaml: string | null): Promise<string[]> {
  const dir = makeTempDir("regauth-loaded-");
  const addr = `127.0.0.1:${await freePort()}`;
  const args = ["--data-dir", join(dir, "data")];
  if (configYaml !== null) {
    const configPath = join(dir, "auth_config.yml");
    await Bun.write(configPath, configYaml.replaceAll("{{ADDR}}", addr));
    args.push("--config", configPath);
  }
  const proc = Bun.spawn(
    ["bun", join(import.meta.dir, "../fixtures/serve-loaded-modules.ts"), addr, ...args],
    { cwd: dir, stdout: "pipe", stderr: "pipe", env: { ...process.env, HOME: dir } },
  );
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  if (code !== 0) throw new Error(`serve-loaded-modules exited ${code}:\n${stderr}`);
  return stdout.trim().split("\n");
}

const LDAP_CONFIG = `
server: {addr: "{{ADDR}}"}
token: {issuer: regauth, expiration: 900}
ldap_auth:
  addr: "127.0.0.1:1"
  base: "ou=people,dc=example,dc=org"
  filter: "(uid=\${account})"
acl:
  - match: {account: "/.+/"}
    actions: ["pull"]
`;

describe("the packages an idle serve loads", () => {
  it("ldapts only with ldap_auth configured", async () => {
    const embeddedDefault = await packagesLoadedByServe(null);
    expect(embeddedDefault).toContain("elysia"); // the check sees what serve loads
    expect(embeddedDefault).not.toContain("ldapts");
    expect(await packagesLoadedByServe(LDAP_CONFIG)).toContain("ldapts");
  });
});
