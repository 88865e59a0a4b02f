import { describe, expect, it } from "bun:test";
import { basic, hashPassword, req, testApp, verifyToken } from "../helpers.ts";

describe("token endpoint smoke", () => {
  it("issues a verifiable token with the granted intersection", async () => {
    const { app, loaded } = await testApp({
      users: { alice: { password: hashPassword("pw") } },
      acl: [{ match: { account: "alice", name: "alice/*" }, actions: ["pull", "push"] }],
    });
    const res = await app.handle(
      req("/auth?service=registry&scope=repository:alice/app:push,pull,delete", {
        headers: { authorization: basic("alice", "pw") },
      }),
    );
    expect(res.status).toBe(200);
    const body = (await res.json()) as { token: string; access_token: string; expires_in: number };
    expect(body.access_token).toBe(body.token);
    expect(body.expires_in).toBe(300);
    const { claims, header } = await verifyToken(body.token, loaded, "registry");
    expect(header.alg).toBe("ES256");
    expect(claims.sub).toBe("alice");
    expect(claims.access).toEqual([{ type: "repository", name: "alice/app", actions: ["pull", "push"] }]);
  });
});
