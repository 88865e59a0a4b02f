/** Config sections for database accounts (issue 3), referenced from src/config/schema.ts. */
import { type Static, Type } from "@sinclair/typebox";

export const RegistrationConfig = Type.Object(
  {
    mode: Type.Union([Type.Literal("off"), Type.Literal("open"), Type.Literal("approval")], {
      default: "off",
      description:
        "Registration by `docker login` with an unknown name: off; open (the account is created); approval (created disabled until `regauth user enable NAME`).",
    }),
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
