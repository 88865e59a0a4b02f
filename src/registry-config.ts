/** The block a user pastes into the registry's config.yml so it trusts our tokens. */
import { join } from "node:path";
import type { LoadedConfig } from "./config/load.ts";
import { BUNDLE_FILE, JWKS_FILE } from "./token/key-set.ts";
import { parseListenAddress } from "./config/load.ts";

/** The realm URL clients are sent to, from the listen address (0.0.0.0 cannot be dialled: use the host name). */
export function realmUrl(loaded: LoadedConfig): string {
  const { server } = loaded.config;
  if (server.letsencrypt) {
    // The certificate's name (issue 16): what docker and the registry must dial for TLS to verify.
    const port = parseListenAddress(server.addr)?.port ?? 443;
    return `https://${server.letsencrypt.host}${port === 443 ? "" : `:${port}`}${server.path_prefix}/auth`;
  }
  const scheme = server.certificate ? "https" : "http";
  const address = parseListenAddress(server.addr);
  let host = address?.hostname ?? "127.0.0.1";
  if (host === "0.0.0.0" || host === "::") host = "<this-host>";
  if (host.includes(":")) host = `[${host}]`;
  return `${scheme}://${host}:${address?.port ?? 5001}${server.path_prefix}/auth`;
}

/** Where the registry posts its notifications: the realm's base + /registry/events. */
export function eventsUrl(loaded: LoadedConfig): string {
  return `${realmUrl(loaded).replace(/\/auth$/, "")}/registry/events`;
}

/**
 * How the registry should deliver (§C.1): a timeout above regauth's worst answer under load
 * (one SQLite transaction per event, but two shared cores and a busy disk), and a short breaker,
 * since its queue for the endpoint waits meanwhile.
 */
const NOTIFICATION_DELIVERY = { timeout: "5s", threshold: 5, backoff: "2s" };

export interface RenderOptions {
  /**
   * The notifications secret to print (`regauth registry-config`); null or absent prints a
   * placeholder instead (serve's first-run output, which may end up in a journal).
   */
  notificationSecret?: string | null;
}

export function renderRegistryConfig(loaded: LoadedConfig, options: RenderOptions = {}): string {
  const { token } = loaded.config;
  // The generated key set publishes every trusted certificate in one bundle (issue 12 item 2);
  // a configured key's certificate is named as it is (its rotation is the operator's).
  const generated = loaded.keyPaths?.inDataDir === true;
  const certificatePath = generated
    ? join(loaded.dataDir, BUNDLE_FILE)
    : (loaded.keyPaths?.certificatePath ?? "<token.certificate>");
  const service = token.services?.[0] ?? "registry";
  return [
    "# Paste into the registry's config.yml (distribution 2.8 and 3.x).",
    "# The realm must be reachable by clients (docker, skopeo), not only by the registry.",
    "auth:",
    "  token:",
    `    realm: ${realmUrl(loaded)}`,
    `    service: ${service}`,
    `    issuer: ${token.issuer}`,
    `    rootcertbundle: ${certificatePath}`,
    ...(generated
      ? [
          "    # registry 3.x only: the same keys as a JWK Set, looked up by the tokens' kid",
          `    # jwks: ${join(loaded.dataDir, JWKS_FILE)}`,
        ]
      : []),
    `    # registry 3.x only, recommended: accept nothing but our algorithm`,
    `    # signingalgorithms: [${loaded.signingKey?.alg ?? "ES256"}]`,
    ...(loaded.config.notifications.enabled ? notificationsBlock(loaded, options) : []),
    "",
  ].join("\n");
}

/** The `notifications` block (issue 11 item 1): pushes, pulls and deletes to regauth's index. */
function notificationsBlock(loaded: LoadedConfig, options: RenderOptions): string[] {
  const secret = options.notificationSecret ?? null;
  return [
    "",
    "# The registry tells regauth about pushes, pulls and deletes (image index, audit log, webhooks).",
    "notifications:",
    "  endpoints:",
    "    - name: regauth",
    `      url: ${eventsUrl(loaded)}`,
    "      headers:",
    secret === null
      ? "        # the secret is left out of this output (a journal keeps it): `regauth registry-config` prints it"
      : "        # the secret regauth checks; keep this file private",
    // A JSON string is a YAML double-quoted scalar, whatever characters the secret holds.
    `        Authorization: [${JSON.stringify(`Bearer ${secret ?? "<secret>"}`)}]`,
    `      timeout: ${NOTIFICATION_DELIVERY.timeout}`,
    `      threshold: ${NOTIFICATION_DELIVERY.threshold}`,
    `      backoff: ${NOTIFICATION_DELIVERY.backoff}`,
    "      # blob events are not indexed: the registry need not send them (both keys: 2.8 and 3.x)",
    "      ignoredmediatypes: [application/octet-stream]",
    "      ignore:",
    "        mediatypes: [application/octet-stream]",
  ];
}
