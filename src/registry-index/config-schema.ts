/**
 * Config section `notifications` (issue 11; docs/registry-index.md): the registry's notifications
 * in, the image index, and the crawl that heals it. Switches: `enabled: false` turns the whole
 * feature off (receiver, index, catalog, webhooks).
 */
import { type Static, Type } from "@sinclair/typebox";

export const NotificationsConfig = Type.Object(
  {
    enabled: Type.Boolean({
      default: true,
      description:
        "Receive the registry's notifications at /registry/events, keep the image index and send webhooks. false: all of it off.",
    }),
    secret_file: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          "File holding the secret the registry sends as `Authorization: Bearer <secret>`. Default: notifications.secret in the data directory, generated 0600 on first start.",
      }),
    ),
    registry_url: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          "The registry's base URL as regauth reaches it (e.g. http://127.0.0.1:5000), for `regauth repo sync` and the periodic crawl.",
      }),
    ),
    registry_host: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 255,
        pattern: "^[A-Za-z0-9.-]+(:[0-9]{1,5})?$",
        description:
          "The registry's host[:port] as users pull from it, for the `docker pull HOST/REPO:TAG` lines of `regauth repo show` and webhook payloads. Default: the host of registry_url; neither: no pull command.",
      }),
    ),
    registry_ca_file: Type.Optional(
      Type.String({ minLength: 1, description: "PEM CA bundle to verify an https registry_url." }),
    ),
    sync_interval_seconds: Type.Integer({
      minimum: 0,
      maximum: 604_800,
      default: 3600,
      description:
        "Crawl the registry and reconcile the index this often (needs registry_url); 0: only `regauth repo sync`.",
    }),
    max_body_bytes: Type.Integer({
      minimum: 1024,
      maximum: 16_777_216,
      // 8 MiB: one event can carry a User-Agent of up to Go's 1 MiB of headers, which the
      // registry's JSON writes up to 6 times longer (< as \u003c); refusing it (413) would stall
      // the registry's queue for ever. Only the registry, with the secret, gets this far.
      default: 8_388_608,
      description:
        "Largest notification body accepted; larger ones are refused with 413 (and the registry retries them for ever, holding back every later event).",
    }),
  },
  { additionalProperties: false, default: {} },
);

export type NotificationsConfig = Static<typeof NotificationsConfig>;

/**
 * The registry's host[:port] as users pull from it, for `docker pull` lines (the catalog and the
 * webhooks' payloads): notifications.registry_host, else the host of notifications.registry_url;
 * null without either.
 */
export function registryHostOf(notifications: {
  registry_host?: string | undefined;
  registry_url?: string | undefined;
}): string | null {
  if (notifications.registry_host !== undefined) return notifications.registry_host;
  const registryUrl = notifications.registry_url;
  if (registryUrl === undefined) return null;
  try {
    return new URL(registryUrl).host || null;
  } catch {
    return null;
  }
}
