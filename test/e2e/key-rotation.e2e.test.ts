/**
 * issue 12 item 2: the whole rotation through the real registry (Debian docker-registry 2.8),
 * trusting the published bundle: an old key's token keeps working after `key rotate` and a
 * registry restart; after the overlap new tokens are signed by the new key and work; once the old
 * key left the bundle (token.expiration + 60 s after the switch) and the registry restarted, a
 * token signed by it is refused. The JWKS file and /.well-known/jwks.json name every token's kid.
 */
import { describe, expect, it } from "bun:test";
import { createPrivateKey, sign } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { importJWK, type JWK, jwtVerify } from "jose";
import {
  BINARY,
  decodeToken,
  ensureBinary,
  fetchToken,
  run,
  startRegauth,
  startRegistry,
} from "./harness.ts";

ensureBinary();

const EXPIRATION_SECONDS = 60; // the schema's minimum
const OVERLAP_SECONDS = 10;
const SERVICE = "registry";
const ISSUER = "regauth-rotation";

async function registryAccepts(registryUrl: string, token: string): Promise<number> {
  const res = await fetch(`${registryUrl}/v2/`, { headers: { authorization: `Bearer ${token}` } });
  await res.arrayBuffer();
  return res.status;
}

/** A token with fresh times signed by the key file `keyPath`, as regauth would have signed it. */
function tokenSignedBy(keyPath: string, header: Record<string, unknown>): string {
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    iss: ISSUER,
    sub: "alice",
    aud: SERVICE,
    exp: now + 60,
    nbf: now - 30,
    iat: now,
    jti: "x",
    access: [],
  };
  const input = `${Buffer.from(JSON.stringify(header)).toString("base64url")}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}`;
  const signature = sign("sha256", Buffer.from(input), {
    key: createPrivateKey(readFileSync(keyPath)),
    dsaEncoding: "ieee-p1363",
  });
  return `${input}.${signature.toString("base64url")}`;
}

describe("key rotation through registry 2.8", () => {
  it(
    "old tokens work after rotate + restart, new key signs after the overlap, a retired key is refused",
    async () => {
      const hash = await Bun.password.hash("secret-pw", { algorithm: "bcrypt", cost: 4 });
      const regauth = await startRegauth({
        configYaml: [
          "server: {addr: '127.0.0.1:{{PORT}}'}",
          `token: {issuer: ${ISSUER}, expiration: ${EXPIRATION_SECONDS}, rotation_overlap_seconds: ${OVERLAP_SECONDS}}`,
          `users: {alice: {password: '${hash}'}}`,
          "acl: [{match: {account: alice}, actions: ['*']}]",
          "",
        ].join("\n"),
      });
      const cli = (sub: string) =>
        run([
          BINARY,
          "key",
          sub,
          "--config",
          join(regauth.dir, "auth_config.yml"),
          "--data-dir",
          regauth.dataDir,
        ]);
      const bundle = join(regauth.dataDir, "token-bundle.crt");
      const jwksPath = join(regauth.dataDir, "jwks.json");
      expect(statSync(bundle).mode & 0o777).toBe(0o644);
      const printed = await run([
        BINARY,
        "registry-config",
        "--config",
        join(regauth.dir, "auth_config.yml"),
        "--data-dir",
        regauth.dataDir,
      ]);
      expect(printed.stdout).toContain(`rootcertbundle: ${bundle}`);
      expect(printed.stdout).toContain(`# jwks: ${jwksPath}`);
      const realm = `${regauth.url}/auth`;
      const newToken = async () => {
        const got = await fetchToken(
          realm,
          { service: SERVICE, scopes: ["repository:app:pull"] },
          "alice:secret-pw",
        );
        expect(got.status, got.text).toBe(200);
        return got.token as string;
      };

      let registry = await startRegistry({
        realm,
        issuer: ISSUER,
        service: SERVICE,
        certificatePath: bundle,
      });
      const oldToken = await newToken();
      const oldKid = String(decodeToken(oldToken).header.kid);
      expect(decodeToken(oldToken).header.x5c).toHaveLength(1);
      expect(await registryAccepts(registry.url, oldToken)).toBe(200);

      const rotated = await cli("rotate");
      expect(rotated.exitCode, rotated.stderr).toBe(0);
      expect(rotated.stdout).toContain("Restart every registry");
      expect((await cli("rotate")).stderr).toContain("already waiting");
      expect(readFileSync(bundle, "utf8").match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
      // The running server notices the rotation within a second or so (the state file's mtime);
      // until it has, it keeps signing with the old key, which the registries still trust.
      const rotatedAt = Date.now();
      for (let keys = 1; keys < 2 && Date.now() - rotatedAt < 5000; await Bun.sleep(200))
        keys = ((await (await fetch(`${regauth.url}/.well-known/jwks.json`)).json()) as { keys: JWK[] }).keys
          .length;
      expect(statSync(join(regauth.dataDir, "token-1.key")).mode & 0o777).toBe(0o600);
      registry.proc.kill();
      await registry.proc.exited;
      registry = await startRegistry({ realm, issuer: ISSUER, service: SERVICE, certificatePath: bundle });
      // Inside the overlap: still the old key; the old token still works.
      expect(decodeToken(await newToken()).header.kid).toBe(oldKid);
      expect(await registryAccepts(registry.url, oldToken)).toBe(200);

      await Bun.sleep(Math.max(0, rotatedAt + (OVERLAP_SECONDS + 1.5) * 1000 - Date.now()));
      const switched = await newToken();
      const newKid = String(decodeToken(switched).header.kid);
      expect(newKid).not.toBe(oldKid);
      expect(await registryAccepts(registry.url, switched)).toBe(200);
      expect(await registryAccepts(registry.url, oldToken)).toBe(200); // not expired yet

      // JWKS: the file and the URL, every key imports, kids match the tokens'.
      const served = (await (await fetch(`${regauth.url}/.well-known/jwks.json`)).json()) as { keys: JWK[] };
      const onDisk = JSON.parse(readFileSync(jwksPath, "utf8")) as { keys: JWK[] };
      expect(served.keys.map((k) => k.kid).sort()).toEqual([oldKid, newKid].sort());
      expect(onDisk).toEqual(served);
      for (const jwk of served.keys) await importJWK(jwk, "ES256");
      const newJwk = served.keys.find((k) => k.kid === newKid) as JWK;
      await jwtVerify(switched, await importJWK(newJwk, "ES256"), { algorithms: ["ES256"], issuer: ISSUER });
      const listed = await cli("list");
      expect(listed.stdout).toMatch(new RegExp(`${oldKid}\\tretired`));
      expect(listed.stdout).toMatch(new RegExp(`${newKid}\\tcurrent`));

      // The old key leaves the set token.expiration + 60 s after the switch; the server rewrites
      // the bundle (on a request or its 10 s timer), and a restarted registry no longer trusts it.
      await Bun.sleep((EXPIRATION_SECONDS + 60 + 1) * 1000);
      expect(await registryAccepts(registry.url, oldToken)).toBe(401); // expired now, as it should be
      await newToken();
      await Bun.sleep(1500);
      await newToken();
      expect(readFileSync(bundle, "utf8").match(/BEGIN CERTIFICATE/g)).toHaveLength(1);
      expect((await cli("list")).stdout).toMatch(new RegExp(`${oldKid}\\texpired`));
      registry.proc.kill();
      await registry.proc.exited;
      registry = await startRegistry({ realm, issuer: ISSUER, service: SERVICE, certificatePath: bundle });
      const oldKeyPath = join(regauth.dataDir, "token.key");
      const forged = tokenSignedBy(oldKeyPath, {
        typ: "JWT",
        alg: "ES256",
        kid: oldKid,
        x5c: decodeToken(oldToken).header.x5c,
      });
      expect(await registryAccepts(registry.url, forged)).toBe(401);
      const kidOnly = tokenSignedBy(oldKeyPath, { typ: "JWT", alg: "ES256", kid: oldKid });
      expect(await registryAccepts(registry.url, kidOnly)).toBe(401);
      // The same forgery with the new key passes: the refusal is the key's, not the forging's.
      const newKeyToken = tokenSignedBy(join(regauth.dataDir, "token-1.key"), {
        typ: "JWT",
        alg: "ES256",
        kid: newKid,
        x5c: decodeToken(switched).header.x5c,
      });
      expect(await registryAccepts(registry.url, newKeyToken)).toBe(200);
      expect(await registryAccepts(registry.url, await newToken())).toBe(200);
      registry.proc.kill();
      await regauth.stop();
    },
    { timeout: 240_000 },
  );
});
