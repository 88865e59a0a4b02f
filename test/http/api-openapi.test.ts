/**
 * The OpenAPI document (issue 10 item 1): it parses, and lists every route the app serves under
 * /api/v1 (walked from Elysia's own route table), each with its request and response schemas.
 */
import { describe, expect, it } from "bun:test";
import { createUser } from "../../src/accounts/users.ts";
import { quickHash } from "../accounts-helpers.ts";
import { call, testApiApp } from "../api-helpers.ts";

interface Operation {
  parameters?: { name: string; in: string }[];
  requestBody?: { content: Record<string, { schema: unknown }> };
  responses: Record<string, { content?: Record<string, { schema: unknown }> }>;
}

describe("OpenAPI document", async () => {
  const t = await testApiApp();
  createUser(t.db, { name: "root", passwordHash: quickHash("root-password"), isAdmin: true, nowUnix: 1 });
  const r = await call(t, "GET", "/openapi.json");
  const doc = r.body as unknown as { openapi: string; paths: Record<string, Record<string, Operation>> };

  it("is served as JSON and is OpenAPI 3.1", () => {
    expect(r.status).toBe(200);
    expect(doc.openapi).toStartWith("3.1");
  });

  const served = t.app.routes
    .filter((route) => route.path.startsWith("/api/v1/") && route.path !== "/api/v1/openapi.json")
    .filter((route) => !route.path.endsWith("/*"))
    .map((route) => ({ method: route.method.toLowerCase(), path: route.path.replace(/:(\w+)/g, "{$1}") }));

  it("the app serves the routes the design lists", () => {
    // 26 of issue 10, 9 for webhooks and 5 for the image index (issue 11).
    expect(served.length).toBe(40);
  });

  for (const { method, path } of served) {
    it(`${method.toUpperCase()} ${path} is documented with its schemas`, () => {
      const operation = doc.paths[path]?.[method];
      expect(operation).toBeDefined();
      if (!operation) return;
      const responses = Object.entries(operation.responses);
      expect(responses.length).toBeGreaterThan(0);
      for (const [, response] of responses)
        expect(response.content?.["application/json"]?.schema).toBeDefined();
      if (method === "post" || method === "patch" || (method === "put" && path.endsWith("/password")))
        expect(operation.requestBody?.content["application/json"]?.schema).toBeDefined();
      for (const name of path.matchAll(/\{(\w+)\}/g))
        expect(operation.parameters?.some((p) => p.in === "path" && p.name === name[1])).toBe(true);
    });
  }

  it("documents nothing the app does not serve", () => {
    const documented = Object.entries(doc.paths).flatMap(([path, operations]) =>
      Object.keys(operations).map((method) => `${method} ${path}`),
    );
    expect(documented.sort()).toEqual(served.map((s) => `${s.method} ${s.path}`).sort());
  });

  it("documents the webhook payload (issue 11) in the deliveries' answer", () => {
    const text =
      JSON.stringify(doc.paths["/api/v1/webhooks/{name}/deliveries"]?.get?.responses ?? {}) +
      JSON.stringify((doc as unknown as { components?: unknown }).components ?? {});
    for (const field of ["pull_command", "occurred_at", "media_type", "size_bytes", "pusher", "digest"])
      expect(text).toContain(field);
  });

  it("request schemas are closed (mass assignment) in the document too", () => {
    const body = doc.paths["/api/v1/users"]?.post?.requestBody?.content["application/json"]?.schema as {
      additionalProperties?: boolean;
    };
    expect(body.additionalProperties).toBe(false);
  });
});
