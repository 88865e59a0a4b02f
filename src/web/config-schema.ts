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
    registry_host: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 253,
        pattern: "^[A-Za-z0-9.-]+(:[0-9]{1,5})?$",
        description:
          "The registry's host[:port] as clients use it, for the docker login command the pages show.",
      }),
    ),
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
