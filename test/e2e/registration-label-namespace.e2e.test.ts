/**
 * End to end through registry 2.8 and skopeo: the docker_auth idiom
 * `{match: {name: "${labels:team}/*"}}` gives team members their team's namespace. With
 * registration open, a stranger registering the team's name `blue` gets `blue/*` as a personal
 * namespace (admin) and read alice's private image there (review finding 1); now the name is
 * refused.
 */
import { describe, expect, it } from "bun:test";
import { makeOciImage, skopeoPull, skopeoPush, startRegauth, startRegistry } from "./harness.ts";

const ALICE_PASSWORD = "alice-password-1";
const STRANGER_PASSWORD = "stranger-password-1";

describe("registration cannot take a ${labels:team} namespace", async () => {
  const aliceHash = await Bun.password.hash(ALICE_PASSWORD, { algorithm: "bcrypt", cost: 4 });
  const regauth = await startRegauth({
    configYaml: `server: {addr: "127.0.0.1:{{PORT}}"}
token: {issuer: regauth, expiration: 300, services: [registry]}
registration: {mode: open}
users:
  alice: {password: "${aliceHash}", labels: {team: [blue]}}
acl:
  - match: {name: "\${labels:team}/*"}
    actions: ["*"]
`,
  });
  const registry = await startRegistry({
    realm: `${regauth.url}/auth`,
    issuer: "regauth",
    service: "registry",
    certificatePath: regauth.certificatePath,
  });

  it("alice pushes to blue/private; a stranger registering `blue` cannot pull it", async () => {
    const push = await skopeoPush(
      makeOciImage("blue team's private image\n"),
      `${registry.host}/blue/private:latest`,
      `alice:${ALICE_PASSWORD}`,
    );
    expect(push.exitCode).toBe(0);
    const pull = await skopeoPull(`${registry.host}/blue/private:latest`, `blue:${STRANGER_PASSWORD}`);
    expect(pull.exitCode).not.toBe(0);
  }, 60_000);
});
