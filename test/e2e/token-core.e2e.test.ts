import { afterAll, describe, expect, it } from "bun:test";
import { hashPassword } from "../helpers.ts";
import {
  dockerLogin,
  makeOciImage,
  skopeoPull,
  skopeoPush,
  startRegauth,
  startRegistry,
  stopAllPeers,
} from "./harness.ts";

afterAll(stopAllPeers);

describe("regauth with the real registry 2.8, skopeo and docker login", async () => {
  const regauth = await startRegauth({
    configYaml: `
server:
  addr: 127.0.0.1:{{PORT}}
token:
  issuer: e2e-issuer
  expiration: 300
users:
  alice:
    password: "${hashPassword("alice-secret")}"
  "": {}
acl:
  - match: {account: alice}
    actions: ["*"]
  - match: {account: ""}
    actions: [pull]
`,
  });
  const registry = await startRegistry({
    realm: `${regauth.url}/auth`,
    issuer: "e2e-issuer",
    service: "registry",
    certificatePath: regauth.certificatePath,
  });
  const image = makeOciImage();

  it("lets alice push and pull with skopeo", async () => {
    const push = await skopeoPush(image, `${registry.host}/alice/app:v1`, "alice:alice-secret");
    expect(push.stderr).not.toContain("denied");
    expect(push.exitCode).toBe(0);
    const pull = await skopeoPull(`${registry.host}/alice/app:v1`, "alice:alice-secret");
    expect(pull.exitCode).toBe(0);
  });

  it("lets anonymous pull but not push", async () => {
    const pull = await skopeoPull(`${registry.host}/alice/app:v1`);
    expect(pull.exitCode).toBe(0);
    const push = await skopeoPush(image, `${registry.host}/anon/app:v1`);
    expect(push.exitCode).not.toBe(0);
    expect(push.stderr).toMatch(/denied|unauthorized/);
  });

  it("accepts docker login with the right password and refuses a wrong one", async () => {
    const ok = await dockerLogin(registry.host, "alice", "alice-secret");
    expect(ok.stdout + ok.stderr).toContain("Login Succeeded");
    expect(ok.exitCode).toBe(0);
    const bad = await dockerLogin(registry.host, "alice", "wrong");
    expect(bad.exitCode).not.toBe(0);
  });
});
