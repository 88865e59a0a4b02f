/**
 * Review: ACL engine vs docker_auth (auth_server/authz/acl.go matchString): docker_auth
 * substitutes placeholders FIRST and only then decides regex (`len(p) > 2 && p[0] == '/' &&
 * p[len(p)-1] == '/'`) or path.Match glob. regauth decides on the unsubstituted source, so an
 * empty value turns `/${labels:project}/` into the empty regex (matches everything) where
 * docker_auth has the glob "//" (matches nothing). FAILS on the current code: regauth grants more.
 */
import { describe, expect, it } from "bun:test";
import { type AuthzRequest, authorizeByAcl, compileAcl } from "../../src/acl.ts";

function request(overrides: Partial<AuthzRequest>): AuthzRequest {
  return {
    account: "bob",
    type: "repository",
    name: "secret/payroll",
    service: "registry",
    ip: null,
    actions: ["pull", "push"],
    labels: {},
    ...overrides,
  };
}

describe("review: regex or glob is decided after substitution, as in docker_auth", () => {
  it("/${labels:project}/ with an empty label value grants nothing (docker_auth: glob `//`)", () => {
    const { acl, problems } = compileAcl(
      [{ match: { name: "/${labels:project}/" }, actions: ["pull", "push"] }],
      "acl",
    );
    expect(problems).toEqual([]);
    // An LDAP attribute or ext_auth label that is present but empty.
    const granted = authorizeByAcl(acl, request({ labels: { project: [""] } }));
    expect(granted).toBeNull();
  });

  it("/${account}/ for the anonymous account grants nothing (docker_auth: glob `//`)", () => {
    const { acl } = compileAcl([{ match: { account: "/${account}/" }, actions: ["pull"] }], "acl");
    expect(authorizeByAcl(acl, request({ account: "", actions: ["pull"] }))).toBeNull();
  });
});
