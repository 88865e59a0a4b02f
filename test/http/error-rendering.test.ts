import { describe, expect, it } from "bun:test";
import { basic, hashPassword, req, testApp } from "../helpers.ts";

describe("error rendering", () => {
  it("a 401 carries WWW-Authenticate and the JSON error envelope (the onError hook covers the routes)", async () => {
    const { app } = await testApp({ users: { alice: { password: hashPassword("pw") } } });
    const res = await app.handle(
      req("/auth?service=registry", { headers: { authorization: basic("alice", "no") } }),
    );
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toBe('Basic realm="test-issuer"');
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(await res.json()).toEqual({
      errors: [{ code: "UNAUTHORIZED", message: "authentication failed" }],
      error: "unauthorized",
      error_description: "authentication failed",
    });
  });
});
