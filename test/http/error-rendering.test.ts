import { describe, expect, it } from "bun:test";
import { basic, hashPassword, req, testApp } from "../helpers.ts";

// Regression: onError was registered after the routes, and Elysia applies a hook only to routes
// added after it, so errors went out as bare text without WWW-Authenticate.
describe("error responses from the token route", () => {
  it("renders 401 with WWW-Authenticate and the JSON error envelope", async () => {
    const { app } = await testApp({ users: { alice: { password: hashPassword("pw") } }, acl: [] });
    const response = await app.handle(
      req("/auth?service=registry", { headers: { authorization: basic("alice", "wrong") } }),
    );
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toBe('Basic realm="test-issuer"');
    expect(response.headers.get("content-type")).toBe("application/json");
    expect(await response.json()).toEqual({
      errors: [{ code: "UNAUTHORIZED", message: "authentication failed" }],
      error: "unauthorized",
      error_description: "authentication failed",
    });
  });

  it("renders 400 with the JSON error envelope", async () => {
    const { app } = await testApp({ acl: [] });
    const response = await app.handle(req("/auth?service=registry&scope=bad"));
    expect(response.status).toBe(400);
    expect(((await response.json()) as { errors: { code: string }[] }).errors[0]?.code).toBe("BAD_REQUEST");
  });
});
