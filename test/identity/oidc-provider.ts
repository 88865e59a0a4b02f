/**
 * A real OpenID provider on loopback for the tests (issue 15): panva's `oidc-provider`, the
 * certified server implementation, with one client, PKCE required, a `groups` claim and its
 * development login form (any password; the login names the account). Accounts are a mutable
 * map: deleting one is "the user removed at the provider", editing groups is leaving a group.
 * Also a fetch-driven browser stand-in for the in-process tests (the e2e test uses chromium).
 */
import { createServer, type Server } from "node:http";
import Provider from "oidc-provider";

export interface TestAccount {
  email: string;
  emailVerified?: boolean;
  groups: string[];
  preferredUsername?: string;
}

export interface TestProvider {
  issuer: string;
  port: number;
  clientId: string;
  clientSecret: string;
  accounts: Map<string, TestAccount>;
  stop(): Promise<void>;
}

export async function startTestProvider(options: {
  port: number;
  redirectUris: string[];
  accounts: Record<string, TestAccount>;
  clientId?: string;
  clientSecret?: string;
  /** oidc-provider's default: scope claims only from userinfo when an access token is issued too. */
  claimsInUserinfoOnly?: boolean;
}): Promise<TestProvider> {
  const issuer = `http://127.0.0.1:${options.port}`;
  const accounts = new Map(Object.entries(options.accounts));
  const clientId = options.clientId ?? "regauth";
  const clientSecret = options.clientSecret ?? "test-client-secret-0123456789";
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: options.redirectUris,
        grant_types: ["authorization_code", "refresh_token"],
        response_types: ["code"],
        token_endpoint_auth_method: "client_secret_basic",
      },
    ],
    pkce: { required: () => true },
    // The claims in the ID token itself, as Keycloak and Dex send them (the default keeps
    // scope-requested claims for userinfo only when an access token is issued too).
    conformIdTokenClaims: options.claimsInUserinfoOnly === true,
    claims: {
      openid: ["sub"],
      profile: ["preferred_username"],
      email: ["email", "email_verified"],
      groups: ["groups"],
    },
    scopes: ["openid", "offline_access", "profile", "email", "groups"],
    // A refresh token at every code exchange (Keycloak's habit), for the re-checks.
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed("refresh_token"),
    findAccount: async (_ctx, id) => {
      const account = accounts.get(id);
      if (!account) return undefined;
      return {
        accountId: id,
        claims: async () => ({
          sub: id,
          preferred_username: account.preferredUsername ?? id,
          email: account.email,
          email_verified: account.emailVerified ?? true,
          groups: [...account.groups],
        }),
      };
    },
  });
  // Quiet: its warnings about the development adapter and keys are expected here.
  provider.on("server_error", () => {});
  const server: Server = createServer(provider.callback());
  await new Promise<void>((resolve) => server.listen(options.port, "127.0.0.1", resolve));
  return {
    issuer,
    port: options.port,
    clientId,
    clientSecret,
    accounts,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A cookie jar keyed by host, enough for the provider's interaction cookies. */
class Jar {
  readonly #cookies = new Map<string, Map<string, string>>();
  store(url: URL, response: Response): void {
    const jar = this.#cookies.get(url.host) ?? new Map<string, string>();
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(";");
      const eq = pair?.indexOf("=") ?? -1;
      if (!pair || eq <= 0) continue;
      jar.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
    this.#cookies.set(url.host, jar);
  }
  header(url: URL): string {
    return [...(this.#cookies.get(url.host) ?? new Map()).entries()].map(([k, v]) => `${k}=${v}`).join("; ");
  }
}

/**
 * Logs in at the provider as `login` from an authorization URL and returns the callback URL the
 * provider redirects to (not followed), as a browser would reach it.
 */
export async function loginAtProvider(
  authorizationUrl: URL,
  login: string,
  redirectPrefix: string,
): Promise<URL> {
  const jar = new Jar();
  let url = authorizationUrl;
  let method = "GET";
  let body: URLSearchParams | undefined;
  for (let hop = 0; hop < 20; hop++) {
    const response = await fetch(url, {
      method,
      redirect: "manual",
      headers: {
        cookie: jar.header(url),
        ...(body ? { "content-type": "application/x-www-form-urlencoded" } : {}),
      },
      ...(body ? { body } : {}),
    });
    jar.store(url, response);
    const location = response.headers.get("location");
    if (location) {
      const next = new URL(location, url);
      if (next.href.startsWith(redirectPrefix)) return next;
      url = next;
      method = "GET";
      body = undefined;
      continue;
    }
    const page = await response.text();
    const action = /<form[^>]*action="([^"]+)"/.exec(page)?.[1];
    if (!action) throw new Error(`no form at ${url.href} (${response.status}): ${page.slice(0, 300)}`);
    url = new URL(action.replaceAll("&amp;", "&"), url);
    method = "POST";
    body = page.includes('value="login"')
      ? new URLSearchParams({ prompt: "login", login, password: "any-password" })
      : new URLSearchParams({ prompt: "consent" });
  }
  throw new Error("too many hops at the provider");
}
