/**
 * acl_xorm rows are read as Go's encoding/json reads them, folding key case; on a repeated key
 * that folds to the same struct field, Go decodes the second object INTO the first (a non-nil
 * *MatchConditions is reused; only the fields present are set). Keeping the last object whole
 * dropped the first one's conditions, so a row patched by a tool (`Match` written by Go, `match`
 * added by hand or by JSON_SET) granted everyone what docker_auth gives only alice (review
 * finding 4).
 */
import { describe, expect, it } from "bun:test";
import { authorizeByAcl, compileAcl } from "../../src/acl.ts";
import { parseAclRows } from "../../src/sql-backends/acl-xorm-authorizer.ts";

describe("acl_xorm entry with both `match` and `Match`", () => {
  it("keeps the account condition, as docker_auth does (json.Unmarshal merges into the same field)", () => {
    const { rules, problems } = parseAclRows([
      {
        seq: 1,
        acl_entry: JSON.stringify({ Match: { account: "alice", name: "x/*" }, Actions: ["*"] }).replace(
          /}$/,
          ',"match":{"name":"x/*"}}',
        ),
      },
    ]);
    expect(problems).toEqual([]);
    const { acl } = compileAcl(rules, "acl_xorm");
    const bob = authorizeByAcl(acl, {
      account: "bob",
      type: "repository",
      name: "x/app",
      service: "registry",
      ip: null,
      actions: ["pull", "push"],
      labels: {},
    });
    // docker_auth: Match = {account: alice, name: x/*}: bob is not matched.
    expect(bob).toBeNull();
  });

  const bob = (labels: Record<string, string[]> = {}) => ({
    account: "bob",
    type: "repository",
    name: "x/app",
    service: "registry",
    ip: null,
    actions: ["pull", "push"],
    labels,
  });
  const rulesOf = (json: string) => parseAclRows([{ seq: 7, acl_entry: json }]);

  it("labels merge key by key (Go reuses the map), actions and strings are replaced", () => {
    const { rules, problems } = rulesOf(
      '{"match":{"labels":{"team":"blue"}},"Match":{"Labels":{"env":"prod"},"name":"x/*"},"actions":["pull","push"],"Actions":["pull"]}',
    );
    expect(problems).toEqual([]);
    expect(rules).toEqual([
      { match: { labels: { team: "blue", env: "prod" }, name: "x/*" }, actions: ["pull"] },
    ]);
    const { acl } = compileAcl(rules, "acl_xorm");
    expect(authorizeByAcl(acl, bob({ team: ["blue"] }))).toBeNull(); // env missing
    expect(authorizeByAcl(acl, bob({ team: ["blue"], env: ["prod"] }))).toEqual(["pull"]);
  });

  it("a later field of the same name in the same object overrides (ACCOUNT after account)", () => {
    const { rules } = rulesOf('{"match":{"account":"alice","ACCOUNT":"carol"},"actions":["*"]}');
    expect(rules).toEqual([{ match: { account: "carol" }, actions: ["*"] }]);
  });

  it("an exactly repeated key is refused with the row's seq (JSON.parse would keep only the last)", () => {
    for (const json of [
      '{"match":{"account":"alice"},"match":{"name":"x/*"},"actions":["*"]}',
      '{"match":{"account":"alice","account":"bob"},"actions":["*"]}',
      '{"match":{"labels":{"team":"a","team":"b"}},"actions":["*"]}',
      '{"match":{"account":"alice"},"actions":["*"],"actions":["pull"]}',
    ]) {
      const { rules, problems } = rulesOf(json);
      expect(rules).toEqual([]);
      expect(problems.map((p) => p.path)).toEqual(["seq 7 acl_entry"]);
      expect(problems[0]?.message).toContain("appears twice");
    }
  });

  it("repeated keys in different objects, and key-like strings in values, are not repeats", () => {
    const { rules, problems } = rulesOf(
      '{"match":{"account":"a\\"b","name":"account"},"actions":["pull","push"],"comment":"match: \\"x\\", match"}',
    );
    expect(problems).toEqual([]);
    expect(rules).toHaveLength(1);
  });
});
