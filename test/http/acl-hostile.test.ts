/**
 * Issue 8 M2: ACL matching must be linear. With the anonymous user and a rule such as
 * `name: "*\/*-*-*-*-x"`, one POST with 64 scopes of 255 characters held the event loop for
 * 4.25 s when globs were backtracking RegExps; `*-*-*-*-*-prod` cost 0.93 s per scope and
 * `/[a-z0-9]*[a-z0-9]*[a-z0-9]*[a-z0-9]*x$/` 21.6 s. Here the same request must simply finish:
 * the timeout is a hang guard, not a timing assertion (`bun run bench` measures the cost).
 */
import { beforeAll, describe, expect, it } from "bun:test";
import { req, testApp, verifyToken } from "../helpers.ts";

type TestApp = Awaited<ReturnType<typeof testApp>>;

const HOSTILE_NAMES = ["*/*-*-*-*-x", "*-*-*-*-*-prod", "/[a-z0-9]*[a-z0-9]*[a-z0-9]*[a-z0-9]*x$/"];

/**
 * Valid repository names of 255 characters, each almost matching one hostile pattern: many
 * dashes after a slash, many dashes and no slash, a long run of letters without the final `x`.
 */
function hostileRepositories(): string[] {
  return Array.from({ length: 64 }, (_, i) => {
    const unique = `n${i}`;
    if (i % 3 === 0) return `${`${unique}/${"a-".repeat(130)}`.slice(0, 254)}a`;
    if (i % 3 === 1) return `${`${unique}-${"a-".repeat(130)}`.slice(0, 254)}a`;
    return `${unique}${"a".repeat(255 - unique.length)}`;
  });
}

let app: TestApp;
beforeAll(async () => {
  app = await testApp({
    users: { "": {} },
    acl: [
      ...HOSTILE_NAMES.map((name) => ({ match: { account: "", name }, actions: ["push"] })),
      { match: { account: "" }, actions: ["pull"] },
    ],
  });
});

describe("hostile scopes against hostile ACL patterns", () => {
  it(
    "one anonymous POST with 64 scopes of 255 characters completes",
    async () => {
      const repositories = hostileRepositories();
      expect(repositories.every((name) => name.length === 255)).toBe(true);
      const form = new URLSearchParams({ service: "registry" });
      for (const name of repositories) form.append("scope", `repository:${name}:pull,push`);
      const res = await app.app.handle(
        req("/auth", {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: form.toString(),
        }),
      );
      expect(res.status).toBe(200);
      const { access_token } = (await res.json()) as { access_token: string };
      const { claims } = await verifyToken(access_token, app.loaded, "registry");
      expect(claims.access).toHaveLength(64);
      // None of the hostile rules matched, so the catch-all pull rule decided every scope.
      for (const grant of claims.access) expect(grant.actions).toEqual(["pull"]);
    },
    { timeout: 20_000 },
  );

  it("the hostile rules still match what they describe", async () => {
    const res = await app.app.handle(req("/auth?service=registry&scope=repository:a-b-c-d-e-prod:push"));
    const { token } = (await res.json()) as { token: string };
    const { claims } = await verifyToken(token, app.loaded, "registry");
    expect(claims.access[0]?.actions).toEqual(["push"]);
  });
});
