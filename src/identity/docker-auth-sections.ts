/**
 * docker_auth's OAuth sections (issue 15 item 4): `google_auth`, `gitlab_auth` and `oidc_auth`
 * are refused with the identity_providers section to write instead, filled in from the values
 * given; `github_auth` has no equivalent yet. Refused rather than mapped silently: docker_auth's
 * pages (/google_auth, /oidc_auth) and token DBs do not exist here, the redirect URL to register
 * at the provider changes, and a silent mapping would hide both.
 */

import { redactUrl } from "../webhooks/url-policy.ts";

function text(section: unknown, key: string): string | null {
  if (typeof section !== "object" || section === null) return null;
  const value = (section as Record<string, unknown>)[key];
  if (typeof value !== "string" || value === "") return null;
  // A URL given with a user name and password (https://u:p@host) is shown without them.
  return /^[a-z][a-z0-9+.-]*:\/\/[^/]*@/i.test(value) ? redactUrl(value) : value;
}

function secretLine(section: unknown): string {
  const file = text(section, "client_secret_file");
  return file ? `client_secret_file: ${file}` : "client_secret_file: /path/to/secret";
}

const COMMON =
  "register https://YOUR-HOST/sign-in/oidc/NAME/callback at the provider (not /oidc_auth); no token DB is needed: " +
  "people sign in to the web interface and make access tokens for docker login there (docs/identity-providers.md)";

function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string" && v !== "") : [];
}

/** What to write instead of docker_auth's section at `path`, or null when it is not one of them. */
export function dockerAuthIdentityAdvice(path: string, value: unknown): string | null {
  // docker_auth's two spellings inside our own section: say which key it is here.
  if (/^identity_providers\.oidc\.\d+\.labels?_claims$/.test(path))
    return "unknown key: regauth's name for docker_auth's labels_claims (and its reference.yml's label_claims) is labels_from_claims";
  switch (path) {
    case "oidc_auth": {
      const section = typeof value === "object" && value !== null ? (value as Record<string, unknown>) : {};
      const read = stringList(section.labels_claims);
      const ignored = stringList(section.label_claims);
      const claims = [...new Set([...read, ...ignored])];
      const labels = claims.length > 0 ? `, labels_from_claims: [${claims.join(", ")}]` : "";
      const trap =
        ignored.length > 0
          ? " Careful: you wrote label_claims, the spelling of docker_auth's reference.yml, which docker_auth silently ignores (it reads labels_claims): " +
            "your ACL's label rules never matched under docker_auth, and with labels_from_claims they will; review them first."
          : " docker_auth's labels_claims (its reference.yml spells it label_claims, which docker_auth silently ignores) is labels_from_claims here.";
      return (
        "docker_auth's oidc_auth is not read; write instead: identity_providers: {public_url: https://YOUR-HOST, oidc: [{name: oidc, " +
        `issuer: ${text(value, "issuer") ?? "https://YOUR-ISSUER"}, client_id: ${text(value, "client_id") ?? "CLIENT_ID"}, ${secretLine(value)}, ` +
        `user_claim: ${text(value, "user_claim") ?? "email"}${claims[0] ? `, groups_claim: ${claims[0]}` : ""}${labels}}]}.` +
        trap +
        " database_groups can also map a claim's groups to regauth groups for grants; " +
        COMMON
      );
    }
    case "google_auth":
      return (
        "docker_auth's google_auth is not read (its page uses Google's retired platform.js); write instead: identity_providers: " +
        `{public_url: https://YOUR-HOST, oidc: [{name: google, display_name: Google, issuer: https://accounts.google.com, client_id: ${text(value, "client_id") ?? "CLIENT_ID"}, ` +
        `${secretLine(value)}, user_claim: email, first_sign_in: create, authorization_params: {access_type: offline, prompt: consent}${text(value, "domain") ? `, allowed_email_domains: [${text(value, "domain")}]` : ""}}]}; ` +
        COMMON
      );
    case "gitlab_auth":
      return (
        "docker_auth's gitlab_auth is not read; write instead: identity_providers: {public_url: https://YOUR-HOST, oidc: [{name: gitlab, display_name: GitLab, " +
        `issuer: ${text(value, "gitlab_web_uri") ?? "https://gitlab.com"}, client_id: ${text(value, "client_id") ?? "APPLICATION_ID"}, ${secretLine(value)}, ` +
        "user_claim: nickname, groups_claim: groups_direct, first_sign_in: create}]} (allowed_groups restricts to a group: checked, unlike docker_auth's organization); " +
        COMMON
      );
    case "github_auth":
      return (
        "a docker_auth option regauth does not support as such (its /github_auth page and token DB do not exist here); write instead: identity_providers: " +
        `{public_url: https://YOUR-HOST, github: [{name: github, client_id: ${text(value, "client_id") ?? "CLIENT_ID"}, ${secretLine(value)}` +
        `${text(value, "organization") ? `, organization: ${text(value, "organization")}` : ""}` +
        `${text(value, "github_web_uri") ? `, web_url: ${text(value, "github_web_uri")}` : ""}` +
        `${text(value, "github_api_uri") ? `, api_url: ${text(value, "github_api_uri")}` : ""}, first_sign_in: create}]} ` +
        "(teams become the ACL label `teams` as with docker_auth; allowed_teams restricts to teams); " +
        "register https://YOUR-HOST/sign-in/github/github/callback as the OAuth app's callback URL (docs/identity-providers.md)"
      );
    default:
      return null;
  }
}
