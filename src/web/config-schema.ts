/**
 * Config section `web` (issue 14; docs/web.md): the web interface served by `regauth serve` at
 * `/` (under server.path_prefix). `enabled: false` serves none of its pages or assets; the token
 * endpoint and /api/v1 do not change either way.
 */
import { type Static, Type } from "@sinclair/typebox";

export const WebConfig = Type.Object(
  {
    enabled: Type.Boolean({
      default: true,
      description: "Serve the web interface at / (under server.path_prefix).",
    }),
    session_idle_minutes: Type.Integer({
      minimum: 1,
      maximum: 1440,
      default: 30,
      description: "A session unused this long ends.",
    }),
    session_max_hours: Type.Integer({
      minimum: 1,
      maximum: 720,
      default: 12,
      description: "A session ends this long after sign-in, used or not.",
    }),
    secure_cookie: Type.Optional(
      Type.Boolean({
        description:
          "Mark the session cookie Secure. Default: true when server.certificate is set; set true behind a TLS-terminating proxy.",
      }),
    ),
  },
  { additionalProperties: false, default: {} },
);

export type WebConfig = Static<typeof WebConfig>;
