/**
 * ACL engine vs docker_auth (auth_server/authz/acl.go matchString): docker_auth substitutes
 * placeholders FIRST and only then decides regex (`len(p) > 2 && p[0] == '/' &&
 * p[len(p)-1] == '/'`) or path.Match glob. Deciding on the unsubstituted source turned
 * `/${labels:project}/` with an empty value into the empty regex (matches everything) where
 * docker_auth has the glob "//" (matches nothing): regauth granted more (review finding 5).
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

describe("regex or glob is decided after substitution, as in docker_auth", () => {
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

  it("/${labels:project}/ with a value is the unanchored regex of that value", () => {
    const { acl } = compileAcl([{ match: { name: "/${labels:project}/" }, actions: ["pull"] }], "acl");
    expect(authorizeByAcl(acl, request({ labels: { project: ["payroll"] }, actions: ["pull"] }))).toEqual([
      "pull",
    ]);
    expect(authorizeByAcl(acl, request({ labels: { project: ["other"] }, actions: ["pull"] }))).toBeNull();
  });

  it("a glob that becomes /.../ once substituted is a regex, as in docker_auth", () => {
    const { acl, problems } = compileAcl([{ match: { name: "/${labels:p}" }, actions: ["pull"] }], "acl");
    expect(problems).toEqual([]);
    // "/" + "payroll/" = "/payroll/": the unanchored regex `payroll`.
    expect(
      authorizeByAcl(acl, request({ name: "x/payroll/a", labels: { p: ["payroll/"] }, actions: ["pull"] })),
    ).toEqual(["pull"]);
    // "/" + "payroll" = "/payroll": a glob, matching only that text.
    expect(
      authorizeByAcl(acl, request({ name: "x/payroll/a", labels: { p: ["payroll"] }, actions: ["pull"] })),
    ).toBeNull();
  });

  it("patterns whose kind cannot change keep their literal prefix and compiled forms", () => {
    const { acl } = compileAcl(
      [
        { match: { name: "/^${account}\\/.+$/" }, actions: ["pull"] },
        { match: { name: "team/${account}/*" }, actions: ["push"] },
      ],
      "acl",
    );
    expect(authorizeByAcl(acl, request({ name: "bob/app", actions: ["pull"] }))).toEqual(["pull"]);
    expect(authorizeByAcl(acl, request({ name: "team/bob/app", actions: ["push"] }))).toEqual(["push"]);
    expect(authorizeByAcl(acl, request({ name: "team/alice/app", actions: ["push"] }))).toBeNull();
  });
});
