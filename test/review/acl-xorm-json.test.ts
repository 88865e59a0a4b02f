/**
 * Review: acl_xorm rows are read "as Go's encoding/json would", folding key case — but Go, on
 * a repeated key that folds to the same struct field, decodes the second object INTO the first
 * (a non-nil *MatchConditions is reused; only the fields present are set). regauth's foldKeys
 * keeps the last object whole, dropping the first one's conditions. A row patched by a tool
 * (`Match` written by Go, `match` added by hand or by JSON_SET) then grants everyone what
 * docker_auth gives only alice. FAILS on the current code.
 */
import { describe, expect, it } from "bun:test";
import { authorizeByAcl, compileAcl } from "../../src/acl.ts";
import { parseAclRows } from "../../src/sql-backends/acl-xorm-authorizer.ts";

describe("review: acl_xorm entry with both `match` and `Match`", () => {
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
});
