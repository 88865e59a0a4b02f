/** The routes besides the token endpoint, and how back-end failures are rendered. */
import { describe, expect, it } from "bun:test";
import type { Authenticator } from "../../src/authn/authenticator.ts";
import { Unavailable } from "../../src/errors.ts";
import { log } from "../../src/log.ts";
import { buildApp } from "../../src/server.ts";
import { basic, req, testApp } from "../helpers.ts";

describe("other routes", () => {
  it("GET /healthz answers JSON", async () => {
    const { app } = await testApp({ server: { hsts: true } });
    const response = await app.handle(req("/healthz"));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: "ok" });
    expect(response.headers.get("strict-transport-security")).toContain("max-age=");
  });

  it("the index names the issuer, under the path prefix", async () => {
    const { app } = await testApp({ server: { path_prefix: "/registry-auth" } });
    const response = await app.handle(req("/registry-auth"));
    expect(response.status).toBe(200);
    expect(await response.text()).toContain("test-issuer");
    expect((await app.handle(req("/"))).status).toBe(404);
    expect((await app.handle(req("/registry-auth/healthz"))).status).toBe(200);
  });
});

describe("back-end failures", () => {
  it("Unavailable becomes 503 with its message; the cause goes to the log only", async () => {
    const { loaded, issuer } = await testApp({ users: { "": {} } });
    const down: Authenticator = {
      name: "ldap",
      authenticate() {
        throw new Unavailable("the LDAP server did not answer", {
          cause: new Error("connect ECONNREFUSED 10.1.2.3:636 bind dn=cn=admin"),
        });
      },
    };
    const app = buildApp(loaded, { ...issuer, authenticators: [down] });
    const lines: string[] = [];
    const restore = log.capture(lines);
    let response: Response;
    try {
      response = await app.handle(
        req("/auth?service=registry", { headers: { authorization: basic("a", "b") } }),
      );
    } finally {
      restore();
    }
    expect(response.status).toBe(503);
    const text = await response.text();
    expect(JSON.parse(text).errors[0]).toEqual({
      code: "UNAVAILABLE",
      message: "the LDAP server did not answer",
    });
    expect(text).not.toContain("10.1.2.3");
    expect(response.headers.get("www-authenticate")).toBeNull();
    expect(lines.some((line) => line.includes("level=error") && line.includes("ECONNREFUSED"))).toBe(true);
  });
});
