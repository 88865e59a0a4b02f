/** The block a user pastes into the registry's config.yml so it trusts our tokens. */
import { join } from "node:path";
import type { LoadedConfig } from "./config/load.ts";
import { BUNDLE_FILE, JWKS_FILE } from "./token/key-set.ts";
import { parseListenAddress } from "./config/load.ts";

/** The realm URL clients are sent to, from the listen address (0.0.0.0 cannot be dialled: use the host name). */
export function realmUrl(loaded: LoadedConfig): string {
  const { server } = loaded.config;
  const scheme = server.certificate ? "https" : "http";
  const address = parseListenAddress(server.addr);
  let host = address?.hostname ?? "127.0.0.1";
  if (host === "0.0.0.0" || host === "::") host = "<this-host>";
  if (host.includes(":")) host = `[${host}]`;
  return `${scheme}://${host}:${address?.port ?? 5001}${server.path_prefix}/auth`;
}

export function renderRegistryConfig(loaded: LoadedConfig): string {
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
    "",
  ].join("\n");
}
