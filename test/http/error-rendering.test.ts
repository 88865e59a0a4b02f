/** Errors thrown by the token route are rendered by the app's error handler, not Elysia's default. */
import { expect, test } from "bun:test";
import { basic, hashPassword, req, testApp } from "../helpers.ts";

test("a wrong password gets 401 with WWW-Authenticate: Basic and the JSON error envelope", async () => {
  const { app } = await testApp({ users: { alice: { password: hashPassword("right") } } });
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

test("a malformed request gets 400 with the JSON envelope", async () => {
  const { app } = await testApp({});
  const response = await app.handle(req("/auth"));
  expect(response.status).toBe(400);
  expect(((await response.json()) as { error: string }).error).toBe("bad_request");
});
