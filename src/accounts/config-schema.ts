/** Config sections for database accounts (issue 3), referenced from src/config/schema.ts. */
import { type Static, Type } from "@sinclair/typebox";
import type { ConfigProblem } from "../errors.ts";

export const RegistrationConfig = Type.Object(
  {
    mode: Type.Union([Type.Literal("off"), Type.Literal("open"), Type.Literal("approval")], {
      default: "off",
      description:
        "Registration by `docker login` with an unknown name: off; open (the account is created); approval (created disabled until `regauth user enable NAME`).",
    }),
    allow_with_external_users: Type.Optional(
      Type.Boolean({
        description:
          "Allow registration while ldap_auth, ext_auth, xorm_auth, acl_xorm or ext_authz is configured. Off: a stranger could register a directory or hook user's name whenever that back-end does not match it (filtered out, not yet created), and the database account would then shadow the real user, or a name an ACL row or authorization hook gives rights to. docs/accounts.md.",
      }),
    ),
  },
  { additionalProperties: false, default: {} },
);

export const AccountsConfig = Type.Object(
  {
    personal_namespaces: Type.Boolean({
      default: true,
      description: "Every database user holds admin on <name>/* (their personal namespace).",
    }),
    group_labels: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description:
        "Label names whose values are database group names: a user whose labels (from ldap_auth, ext_auth or the users section) carry `devs` under one of these gets the grants of @devs. E.g. [group].",
    }),
  },
  { additionalProperties: false, default: {} },
);

export type RegistrationConfig = Static<typeof RegistrationConfig>;
export type AccountsConfig = Static<typeof AccountsConfig>;

/**
 * Registration next to external users is refused unless asked for explicitly. Registration
 * happens when no authenticator knows a name; ldap_auth, ext_auth and xorm_auth (a table other
 * tools fill, issue 13) know their users only at
 * the moment they are asked (an LDAP filter that excludes someone today, an account created in
 * the directory tomorrow), so a stranger could register a directory user's name first, and the
 * database, asked before them, would then shadow the real user. SUSE/Portus learned the same
 * lesson (PR #2044, commit 2ece80e8: no database user whose name collides with an LDAP user, so
 * that a local password cannot shadow the directory account). A back-end that did not match a
 * name at one moment is no proof it never will, so regauth refuses the combination outright.
 *
 * acl_xorm and ext_authz are the same kind of source for rights (review finding 2): a row
 * `{account: deploy} → push` added by a tool, or a hook that grants by name, hands whoever
 * registers `deploy` first what was written for the deploy account an administrator is about to
 * create. Their rules change while the server runs (a hook's are not even readable), so names
 * cannot be reserved for them once at start. (With the flag set, registration still refuses the
 * names the acl_xorm rows loaded at that moment single out: src/accounts/reserved-names.ts.)
 */
export function registrationProblems(config: {
  registration: RegistrationConfig;
  ldap_auth?: unknown;
  ext_auth?: unknown;
  xorm_auth?: unknown;
  acl_xorm?: unknown;
  ext_authz?: unknown;
}): ConfigProblem[] {
  const { mode, allow_with_external_users: allowed } = config.registration;
  if (mode === "off" || allowed === true) return [];
  const users = (["ldap_auth", "ext_auth", "xorm_auth"] as const).filter((key) => config[key] !== undefined);
  const rights = (["acl_xorm", "ext_authz"] as const).filter((key) => config[key] !== undefined);
  const fix = "use mode off, or set registration.allow_with_external_users: true if that is what you want";
  const problems: ConfigProblem[] = [];
  if (users.length > 0)
    problems.push({
      path: "registration.mode",
      message: `${mode} registration next to ${users.join(" and ")} would let a stranger register a name that back-end did not match at that moment, and the database account would shadow the real user later; ${fix}`,
    });
  if (rights.length > 0)
    problems.push({
      path: "registration.mode",
      message: `${mode} registration next to ${rights.join(" and ")} would let a stranger register an account name that back-end gives rights to (rules that change while the server runs), and take those rights; ${fix}`,
    });
  return problems;
}
