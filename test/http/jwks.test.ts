/** issue 12 item 2: `${prefix}/.well-known/jwks.json` serves the published keys under the tokens' kid. */
import { describe, expect, test } from "bun:test";
import { importJWK, type JWK } from "jose";
import { basic, hashPassword, req, testApp } from "../helpers.ts";

describe("GET /.well-known/jwks.json", () => {
  test.each([
    ["libtrust kid (registry 2.x)", false, ""],
    ["thumbprint kid (registry 3.x)", true, "/reg"],
  ])(
    "%s: every key imports, the token's kid is in the set, x5c is the certificate",
    async (_n, thumbprint, prefix) => {
      const { app, loaded } = await testApp({
        token: { issuer: "i", expiration: 300, disable_legacy_key_id: thumbprint },
        server: { path_prefix: prefix },
        users: { alice: { password: hashPassword("pw") } },
        acl: [{ match: { account: "alice" }, actions: ["*"] }],
      });
      const res = await app.handle(req(`${prefix}/.well-known/jwks.json`));
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toContain("application/json");
      const jwks = (await res.json()) as { keys: JWK[] };
      expect(jwks.keys).toHaveLength(1);
      for (const jwk of jwks.keys) {
        await importJWK(jwk, "ES256");
        expect(jwk.d).toBeUndefined(); // never the private part
        expect(jwk.x5c?.[0]).toBe(loaded.signingKey?.certificates[0]?.raw.toString("base64"));
      }
      const tokenRes = await app.handle(
        req(`${prefix}/auth?service=registry&scope=repository:a:pull`, {
          headers: { authorization: basic("alice", "pw") },
        }),
      );
      const { token } = (await tokenRes.json()) as { token: string };
      const header = JSON.parse(Buffer.from(token.split(".")[0] ?? "", "base64url").toString()) as {
        kid: string;
      };
      expect(jwks.keys.map((k) => k.kid)).toContain(header.kid);
      expect(header.kid.includes(":")).toBe(!thumbprint);
    },
  );
});
