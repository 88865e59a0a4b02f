/** Scope grammar (distribution docs/spec/auth/scope.md) and the hostile inputs of security.md §7.3 B. */
import { describe, expect, it } from "bun:test";
import { BadRequest } from "../../src/errors.ts";
import { MAX_SCOPES_PER_REQUEST, parseScopes, type Scope } from "../../src/scope.ts";

function rejection(values: readonly string[]): BadRequest {
  try {
    parseScopes(values);
  } catch (error) {
    if (error instanceof BadRequest) return error;
    throw error;
  }
  throw new Error(`accepted ${JSON.stringify(values)}`);
}

describe("parseScopes accepts the spec grammar", () => {
  const cases: { name: string; values: string[]; scopes: Scope[] }[] = [
    {
      name: "one repository scope",
      values: ["repository:alice/app:pull,push"],
      scopes: [{ type: "repository", name: "alice/app", actions: ["pull", "push"] }],
    },
    {
      name: "a single-component name",
      values: ["repository:samalba:pull"],
      scopes: [{ type: "repository", name: "samalba", actions: ["pull"] }],
    },
    {
      name: "a registry host with a port makes four parts",
      values: ["repository:localhost:5000/foo/bar:pull"],
      scopes: [{ type: "repository", name: "localhost:5000/foo/bar", actions: ["pull"] }],
    },
    {
      name: "a dotted registry host without a port",
      values: ["repository:registry.example.com/team/app:pull"],
      scopes: [{ type: "repository", name: "registry.example.com/team/app", actions: ["pull"] }],
    },
    {
      name: "the catalog, as the registry itself asks for it",
      values: ["registry:catalog:*"],
      scopes: [{ type: "registry", name: "catalog", actions: ["*"] }],
    },
    {
      name: "a resource class is kept",
      values: ["repository(plugin):vieux/sshfs:pull"],
      scopes: [{ type: "repository", class: "plugin", name: "vieux/sshfs", actions: ["pull"] }],
    },
    {
      name: "repeated scope parameters",
      values: ["repository:a/b:pull", "repository:c/d:push"],
      scopes: [
        { type: "repository", name: "a/b", actions: ["pull"] },
        { type: "repository", name: "c/d", actions: ["push"] },
      ],
    },
    {
      name: "space-separated scopes in one value",
      values: ["repository:a/b:pull repository:c/d:push"],
      scopes: [
        { type: "repository", name: "a/b", actions: ["pull"] },
        { type: "repository", name: "c/d", actions: ["push"] },
      ],
    },
    {
      name: "the same resource twice is merged",
      values: ["repository:a/b:push", "repository:a/b:pull repository:a/b:push,delete"],
      scopes: [{ type: "repository", name: "a/b", actions: ["delete", "pull", "push"] }],
    },
    {
      name: "actions are de-duplicated and sorted",
      values: ["repository:a/b:push,pull,push,pull"],
      scopes: [{ type: "repository", name: "a/b", actions: ["pull", "push"] }],
    },
    {
      name: "an empty scope= is an authentication-only request",
      values: [""],
      scopes: [],
    },
    { name: "no scope at all", values: [], scopes: [] },
    {
      name: "separators allowed by the reference grammar",
      values: ["repository:a_b/c__d/e-f/g--h/i.j:pull"],
      scopes: [{ type: "repository", name: "a_b/c__d/e-f/g--h/i.j", actions: ["pull"] }],
    },
    {
      name: "a name of exactly 255 characters",
      values: [`repository:${"a".repeat(255)}:pull`],
      scopes: [{ type: "repository", name: "a".repeat(255), actions: ["pull"] }],
    },
    {
      name: "hyphenated actions seen in the wild",
      values: ["repository:a/b:scanner-pull"],
      scopes: [{ type: "repository", name: "a/b", actions: ["scanner-pull"] }],
    },
  ];
  for (const { name, values, scopes } of cases) {
    it(name, () => {
      expect(parseScopes(values)).toEqual(scopes);
    });
  }

  it("parses repeated and space-joined forms identically", () => {
    const repeated = parseScopes(["repository:a/b:pull", "repository:c/d:push,pull"]);
    const joined = parseScopes(["repository:a/b:pull repository:c/d:push,pull"]);
    expect(joined).toEqual(repeated);
  });

  it(`accepts exactly ${MAX_SCOPES_PER_REQUEST} resources`, () => {
    const values = Array.from({ length: MAX_SCOPES_PER_REQUEST }, (_, i) => `repository:r${i}:pull`);
    expect(parseScopes(values)).toHaveLength(MAX_SCOPES_PER_REQUEST);
  });
});

describe("parseScopes refuses malformed input with 400", () => {
  const cases: { name: string; value: string }[] = [
    { name: "two parts", value: "repository:foo" },
    { name: "one part", value: "repository" },
    { name: "five parts", value: "repository:h:1:2:pull" },
    { name: "four parts whose middle is not a port", value: "repository:foo:bar:pull" },
    { name: "capitalised type", value: "Repository:foo:pull" },
    { name: "type with punctuation", value: "repo-sitory:foo:pull" },
    { name: "empty type", value: ":foo:pull" },
    { name: "unclosed class", value: "repository(plugin:foo:pull" },
    { name: "empty class", value: "repository():foo:pull" },
    { name: "uppercase in the path", value: "repository:alice/App:pull" },
    { name: "uppercase single component", value: "repository:Foo:pull" },
    { name: "dot-dot component", value: "repository:alice/../bob:pull" },
    { name: "double dot inside a component", value: "repository:alice..bob:pull" },
    { name: "double slash", value: "repository:alice//app:pull" },
    { name: "leading slash", value: "repository:/alice/app:pull" },
    { name: "trailing slash", value: "repository:alice/app/:pull" },
    { name: "empty name", value: "repository::pull" },
    { name: "a name of 256 characters", value: `repository:${"a".repeat(256)}:pull` },
    { name: "a huge name", value: `repository:${"a".repeat(100_000)}:pull` },
    { name: "uppercase action", value: "repository:foo:PULL" },
    { name: "action with a digit", value: "repository:foo:pull2" },
    { name: "action with a space-like character", value: "repository:foo:pu\u00a0ll" },
    { name: "NUL in the name", value: "repository:foo\u0000bar:pull" },
    { name: "NUL in the action", value: "repository:foo:pull\u0000" },
    { name: "CR LF (log forging)", value: "repository:foo:pull\r\nlevel=info msg=forged" },
    { name: "LF alone", value: "repository:foo:pull\nrepository:bar:push" },
    { name: "TAB as a separator", value: "repository:foo:pull\trepository:bar:push" },
    { name: "DEL", value: "repository:foo\u007f:pull" },
    { name: "double space", value: "repository:a:pull  repository:b:pull" },
    { name: "leading space", value: " repository:a:pull" },
    { name: "trailing space", value: "repository:a:pull " },
    { name: "a lone space", value: " " },
    { name: "non-ASCII name", value: "repository:caf\u00e9:pull" },
  ];
  for (const { name, value } of cases) {
    it(name, () => {
      const error = rejection([value]);
      expect(error.status).toBe(400);
      expect(error.message.length).toBeLessThan(400);
      // The message never echoes a raw control character back (it would reach logs and clients).
      expect(error.message).not.toMatch(/[\u0000-\u001f\u007f]/);
    });
  }

  it("refuses a malformed scope even next to valid ones", () => {
    expect(rejection(["repository:ok:pull", "repository:bad"]).status).toBe(400);
  });
});

describe("too many scopes", () => {
  it("10,000 repeated scope parameters → TOO_MANY_SCOPES", () => {
    const values = Array.from({ length: 10_000 }, (_, i) => `repository:r${i}:pull`);
    const error = rejection(values);
    expect(error.status).toBe(400);
    expect(error.code).toBe("TOO_MANY_SCOPES");
  });

  it("10,000 space-joined scopes in one value → TOO_MANY_SCOPES", () => {
    const value = Array.from({ length: 10_000 }, (_, i) => `repository:r${i}:pull`).join(" ");
    expect(rejection([value]).code).toBe("TOO_MANY_SCOPES");
  });

  it(`${MAX_SCOPES_PER_REQUEST + 1} distinct resources → TOO_MANY_SCOPES`, () => {
    const values = Array.from({ length: MAX_SCOPES_PER_REQUEST + 1 }, (_, i) => `repository:r${i}:pull`);
    expect(rejection(values).code).toBe("TOO_MANY_SCOPES");
  });

  it("10,000 empty scope parameters are refused too (they cost parsing)", () => {
    expect(rejection(Array.from({ length: 10_000 }, () => "")).code).toBe("TOO_MANY_SCOPES");
  });

  it("many repetitions of one resource in a value merge into one scope", () => {
    const value = Array.from({ length: 500 }, () => "repository:a/b:pull").join(" ");
    expect(parseScopes([value])).toEqual([{ type: "repository", name: "a/b", actions: ["pull"] }]);
  });
});
