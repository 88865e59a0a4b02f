/** Checks of identity_providers beyond its schema (issue 15), reported with the other config problems. */
import type { ConfigProblem } from "../errors.ts";
import { type IdentityProvidersConfig, maxUncheckedProblem } from "./config-schema.ts";
import { githubSecretOf } from "./github.ts";
import { clientSecretOf, providerConfigProblem } from "./oidc.ts";

const NO_CREDENTIALS = "must not contain a user name or password";

export function identityProviderProblems(section: IdentityProvidersConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const seen = new Set<string>();
  section.oidc.forEach((provider, i) => {
    const path = `identity_providers.oidc.${i}`;
    if (seen.has(provider.name))
      problems.push({ path: `${path}.name`, message: `two providers are named ${provider.name}` });
    seen.add(provider.name);
    const cap = maxUncheckedProblem(provider);
    if (cap) problems.push({ path: `${path}.max_unchecked_seconds`, message: cap });
    const problem = providerConfigProblem(provider, section.public_url);
    if (problem) {
      problems.push({ path, message: problem });
      return;
    }
    if (provider.client_secret_file !== undefined) {
      try {
        if (clientSecretOf(provider) === "")
          problems.push({ path: `${path}.client_secret_file`, message: "the file is empty" });
      } catch {
        problems.push({
          path: `${path}.client_secret_file`,
          message: `cannot read ${provider.client_secret_file}`,
        });
      }
    }
  });
  // A user name or password in a provider URL would go to every browser in the authorize link
  // (web_url) or into logs; secrets belong in client_secret_file.
  const credentialsIn = (text: string) => {
    const url = URL.parse(text);
    return url !== null && (url.username !== "" || url.password !== "");
  };
  section.oidc.forEach((provider, i) => {
    if (credentialsIn(provider.issuer))
      problems.push({ path: `identity_providers.oidc.${i}.issuer`, message: NO_CREDENTIALS });
  });
  section.github.forEach((provider, i) => {
    for (const field of ["web_url", "api_url"] as const)
      if (credentialsIn(provider[field]))
        problems.push({ path: `identity_providers.github.${i}.${field}`, message: NO_CREDENTIALS });
  });
  // One issuer, one provider: an identity is issuer + subject, and its link names one provider
  // whose rules re-check it.
  const issuers = new Map<string, string>();
  section.oidc.forEach((provider, i) => {
    const other = issuers.get(provider.issuer);
    if (other !== undefined)
      problems.push({
        path: `identity_providers.oidc.${i}.issuer`,
        message: `${other} has this issuer already`,
      });
    issuers.set(provider.issuer, provider.name);
  });
  section.github.forEach((provider, i) => {
    const path = `identity_providers.github.${i}`;
    if (seen.has(provider.name))
      problems.push({ path: `${path}.name`, message: `two providers are named ${provider.name}` });
    seen.add(provider.name);
    const cap = maxUncheckedProblem(provider);
    if (cap) problems.push({ path: `${path}.max_unchecked_seconds`, message: cap });
    if ((provider.client_secret === undefined) === (provider.client_secret_file === undefined))
      problems.push({ path, message: "give exactly one of client_secret and client_secret_file" });
    else if (provider.client_secret_file !== undefined) {
      try {
        githubSecretOf(provider);
      } catch {
        problems.push({
          path: `${path}.client_secret_file`,
          message: `cannot read ${provider.client_secret_file}`,
        });
      }
    }
    if (provider.redirect_url === undefined && section.public_url === undefined)
      problems.push({ path, message: "give redirect_url, or identity_providers.public_url to derive it" });
    if (provider.organization === undefined && (provider.allowed_teams || provider.database_groups))
      problems.push({
        path,
        message: "allowed_teams and database_groups name teams of an organization: give organization",
      });
    for (const field of ["web_url", "api_url"] as const) {
      const url = new URL(provider[field]);
      const loopback = ["127.0.0.1", "[::1]", "localhost"].includes(url.hostname);
      if (url.protocol !== "https:" && !loopback)
        problems.push({ path: `${path}.${field}`, message: "must be an https URL (http only on loopback)" });
    }
  });
  return problems;
}
