import { describe, expect, it } from "bun:test";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { makeTempDir } from "../helpers.ts";
import { writeHook } from "../hook-fixtures.ts";
import { dockerLogin, makeOciImage, skopeoPull, skopeoPush, startRegauth, startRegistry } from "./harness.ts";

const EXAMPLE_EXT_AUTH = resolve(import.meta.dir, "../../docs/examples/ext_auth.sh");

describe("hooks with the compiled binary, the real registry 2.8 and skopeo", async () => {
  // docs/examples/ext_auth.sh: builder gets the label group=builders, viewer gets no labels.
  // The ext_authz hook is asked only when no ACL rule matches: it grants pull, nothing more.
  const envDump = join(makeTempDir(), "authz-env");
  const authzHook = writeHook('cat > /dev/null\nenv > "$1"\necho \'{"actions": ["pull"]}\'');
  const regauth = await startRegauth({
    configYaml: `
server:
  addr: 127.0.0.1:{{PORT}}
token:
  issuer: hooks-e2e
  expiration: 300
ext_auth:
  command: ${EXAMPLE_EXT_AUTH}
  timeout_seconds: 5
ext_authz:
  command: ${authzHook}
  args: [${envDump}]
acl:
  - match: {name: "\${labels:group}/*"}
    actions: [pull, push]
`,
    env: { REGAUTH_E2E_SECRET: "must-not-reach-hooks" },
  });
  const registry = await startRegistry({
    realm: `${regauth.url}/auth`,
    issuer: "hooks-e2e",
    service: "registry",
    certificatePath: regauth.certificatePath,
  });
  const image = makeOciImage("built by a hook-authenticated user\n");

  it("lets a user whose hook labels match the ACL's ${labels:group} push and pull", async () => {
    const push = await skopeoPush(image, `${registry.host}/builders/app:v1`, "builder:let-me-build");
    expect(push.stderr).not.toContain("denied");
    expect(push.exitCode).toBe(0);
    const pull = await skopeoPull(`${registry.host}/builders/app:v1`, "builder:let-me-build");
    expect(pull.exitCode).toBe(0);
  });

  it("denies push to a user without the label; ext_authz still grants pull", async () => {
    const push = await skopeoPush(image, `${registry.host}/builders/app:v2`, "viewer:just-looking");
    expect(push.exitCode).not.toBe(0);
    expect(push.stderr).toMatch(/denied|unauthorized/i);
    const pull = await skopeoPull(`${registry.host}/builders/app:v1`, "viewer:just-looking");
    expect(pull.exitCode).toBe(0);
    // The hook ran inside the compiled server and saw none of the server's environment.
    const seen = readFileSync(envDump, "utf8");
    expect(seen).toContain("HOME=/nonexistent");
    expect(seen).not.toContain("must-not-reach-hooks");
  });

  it("refuses a wrong password and an unknown user", async () => {
    const wrong = await skopeoPull(`${registry.host}/builders/app:v1`, "builder:guess");
    expect(wrong.exitCode).not.toBe(0);
    const unknown = await skopeoPull(`${registry.host}/builders/app:v1`, "stranger:whatever");
    expect(unknown.exitCode).not.toBe(0);
  });

  it("accepts docker login for a hook user", async () => {
    const login = await dockerLogin(registry.host, "builder", "let-me-build");
    expect(login.stdout + login.stderr).toContain("Login Succeeded");
  });
});
