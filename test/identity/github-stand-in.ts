/**
 * A local stand-in for GitHub's OAuth and API endpoints (GitHub itself cannot be reached from
 * the test machines): /login/oauth/authorize (signs in the user the test names, redirects back
 * with a code), /login/oauth/access_token (client secret, single-use code, redirect_uri and the
 * PKCE S256 verifier checked; errors answered with 200 and `error`, as GitHub does), /user,
 * /orgs/ORG/members/LOGIN (204 or 404) and /user/teams (paginated by the Link header). Under
 * a path prefix, like GitHub Enterprise Server's /api/v3.
 */
import { createHash, randomBytes } from "node:crypto";

export interface GithubUser {
  id: number;
  login: string;
  orgs: string[];
  teams: { org: string; slug: string; parent?: string }[];
}

export interface GithubStandIn {
  webUrl: string;
  apiUrl: string;
  clientId: string;
  clientSecret: string;
  users: Map<string, GithubUser>;
  /** The login the next authorize request signs in as. */
  nextLogin: string;
  /** Tokens revoked by "the user" (the app's authorization removed). */
  revoke(login: string): void;
  stop(): void;
}

export function startGithubStandIn(): GithubStandIn {
  const codes = new Map<string, { login: string; redirectUri: string; challenge: string }>();
  const tokens = new Map<string, string>();
  const users = new Map<string, GithubUser>();
  const state: GithubStandIn = {
    webUrl: "",
    apiUrl: "",
    clientId: "gh-client",
    clientSecret: "gh-secret-0123456789",
    users,
    nextLogin: "",
    revoke(login) {
      for (const [token, owner] of tokens) if (owner === login) tokens.delete(token);
    },
    stop() {
      server.stop(true);
    },
  };
  const userOf = (request: Request) => {
    const token = /^Bearer (.+)$/.exec(request.headers.get("authorization") ?? "")?.[1] ?? "";
    const login = tokens.get(token);
    return login === undefined ? null : (users.get(login) ?? null);
  };
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(request: Request): Promise<Response> {
      const url = new URL(request.url);
      const path = url.pathname;
      if (path === "/login/oauth/authorize") {
        const q = url.searchParams;
        if (q.get("client_id") !== state.clientId || q.get("code_challenge_method") !== "S256")
          return new Response("bad request", { status: 400 });
        const code = randomBytes(10).toString("hex");
        codes.set(code, {
          login: state.nextLogin,
          redirectUri: q.get("redirect_uri") ?? "",
          challenge: q.get("code_challenge") ?? "",
        });
        const back = new URL(q.get("redirect_uri") ?? "");
        back.searchParams.set("code", code);
        back.searchParams.set("state", q.get("state") ?? "");
        return new Response(null, { status: 302, headers: { location: back.href } });
      }
      if (path === "/login/oauth/access_token" && request.method === "POST") {
        const body = new URLSearchParams(await request.text());
        const grant = codes.get(body.get("code") ?? "");
        codes.delete(body.get("code") ?? "");
        const verifier = body.get("code_verifier") ?? "";
        const error = (e: string) => Response.json({ error: e });
        if (body.get("client_id") !== state.clientId || body.get("client_secret") !== state.clientSecret)
          return error("incorrect_client_credentials");
        if (!grant) return error("bad_verification_code");
        if (grant.redirectUri !== body.get("redirect_uri")) return error("redirect_uri_mismatch");
        if (createHash("sha256").update(verifier).digest("base64url") !== grant.challenge)
          return error("bad_verification_code");
        const token = `gho_${randomBytes(16).toString("hex")}`;
        tokens.set(token, grant.login);
        return Response.json({ access_token: token, token_type: "bearer", scope: "read:org,read:user" });
      }
      if (!path.startsWith("/api/v3/")) return new Response("not found", { status: 404 });
      const apiPath = path.slice("/api/v3".length);
      const user = userOf(request);
      if (!user) return Response.json({ message: "Bad credentials" }, { status: 401 });
      if (apiPath === "/user") return Response.json({ login: user.login, id: user.id });
      const member = /^\/orgs\/([^/]+)\/members\/([^/]+)$/.exec(apiPath);
      if (member) {
        const target = users.get(decodeURIComponent(member[2] ?? ""));
        const inOrg = target?.orgs.some(
          (o) => o.toLowerCase() === decodeURIComponent(member[1] ?? "").toLowerCase(),
        );
        return new Response(null, { status: inOrg ? 204 : 404 });
      }
      if (apiPath === "/user/teams") {
        // One team a page, to exercise the Link header.
        const page = Number(url.searchParams.get("page") ?? "1");
        const team = user.teams[page - 1];
        const list = team
          ? [
              {
                slug: team.slug,
                organization: { login: team.org },
                parent: team.parent ? { slug: team.parent } : null,
              },
            ]
          : [];
        const headers: Record<string, string> =
          page < user.teams.length
            ? { link: `<${state.apiUrl}/user/teams?page=${page + 1}>; rel="next"` }
            : {};
        return Response.json(list, { headers });
      }
      return Response.json({ message: "Not Found" }, { status: 404 });
    },
  });
  state.webUrl = `http://127.0.0.1:${server.port}`;
  state.apiUrl = `${state.webUrl}/api/v3`;
  return state;
}
