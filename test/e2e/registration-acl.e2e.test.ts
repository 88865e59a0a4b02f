/**
 * Issue 8 H1 end to end: with `registration: {mode: open}` and ACL rules written for accounts an
 * administrator will create (`deploy` → push, pull; `/^ci-/` → pull on owner/*), a stranger's
 * `docker login` as `deploy` created that account and received those rights: through the real
 * registry they read and pushed into owner's private repository. Such names are refused now;
 * names only a catch-all pattern covers still register.
 */
import { describe, expect, it } from "bun:test";
import { dockerLogin, makeOciImage, skopeoPull, skopeoPush, startRegauth, startRegistry } from "./harness.ts";

const OWNER_PASSWORD = "owner-password-1";
const STRANGER_PASSWORD = "stranger-password-1";

// Peers started in the describe body live until its tests are done (harness killWhenScopeEnds).
describe("registration does not claim ACL rights written for someone else", async () => {
  const ownerHash = await Bun.password.hash(OWNER_PASSWORD, { algorithm: "bcrypt", cost: 4 });
  const regauth = await startRegauth({
    configYaml: `server: {addr: "127.0.0.1:{{PORT}}"}
token: {issuer: regauth, expiration: 300, services: [registry]}
registration: {mode: open}
users:
  owner: {password: "${ownerHash}"}
acl:
  - match: {account: owner, name: "owner/*"}
    actions: ["*"]
  - match: {account: deploy, name: "owner/*"}
    actions: [push, pull]
  - match: {account: "/^ci-/", name: "owner/*"}
    actions: [pull]
  - match: {account: "/.+/", name: "\${account}/*"}
    actions: ["*"]
`,
  });
  const registry = await startRegistry({
    realm: `${regauth.url}/auth`,
    issuer: "regauth",
    service: "registry",
    certificatePath: regauth.certificatePath,
  });
  const push = await skopeoPush(
    makeOciImage("owner's private image\n"),
    `${registry.host}/owner/private:latest`,
    `owner:${OWNER_PASSWORD}`,
  );
  expect(push.exitCode).toBe(0);

  it("warns once at start that registration refuses names the ACL's account patterns match", () => {
    const lines = regauth.stderr.text.split("\n").filter((line) => line.includes("account patterns"));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("/^ci-/");
  });

  it("docker login as deploy with a stranger's password is refused", async () => {
    const login = await dockerLogin(registry.host, "deploy", STRANGER_PASSWORD);
    expect(login.exitCode).not.toBe(0);
    expect(login.stderr).toContain("this name is not available");
  });

  it("skopeo as deploy cannot push into owner's repository", async () => {
    const push = await skopeoPush(
      makeOciImage("stranger's image\n"),
      `${registry.host}/owner/private:latest`,
      `deploy:${STRANGER_PASSWORD}`,
    );
    expect(push.exitCode).not.toBe(0);
  });

  it("skopeo as ci-evil cannot read owner's repository", async () => {
    const pull = await skopeoPull(`${registry.host}/owner/private:latest`, `ci-evil:${STRANGER_PASSWORD}`);
    expect(pull.exitCode).not.toBe(0);
  });

  it("owner's image is still owner's", async () => {
    const pull = await skopeoPull(`${registry.host}/owner/private:latest`, `owner:${OWNER_PASSWORD}`);
    expect(pull.exitCode).toBe(0);
  });

  it("a name only the catch-all pattern covers still registers and gets its own namespace", async () => {
    // The token request is what matters; whether the docker CLI can store the credentials
    // afterwards depends on the machine's credential helper.
    const login = await dockerLogin(registry.host, "newbie", STRANGER_PASSWORD);
    expect(login.stderr).not.toContain("unauthorized");
    expect(login.stderr).not.toContain("not available");
    const push = await skopeoPush(
      makeOciImage(),
      `${registry.host}/newbie/app:latest`,
      `newbie:${STRANGER_PASSWORD}`,
    );
    expect(push.exitCode).toBe(0);
  });
});
