/** Config section `access_tokens` (issue 10 item 3; docs/access-tokens.md). */
import { type Static, Type } from "@sinclair/typebox";

export const AccessTokensConfig = Type.Object(
  {
    max_lifetime_days: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 36_500,
        description:
          "Longest lifetime of a new access token, in days; tokens must then have an expiry. Unset: tokens may never expire.",
      }),
    ),
  },
  { additionalProperties: false, default: {} },
);

export type AccessTokensConfig = Static<typeof AccessTokensConfig>;
