/** Checks of identity_providers beyond its schema (issue 15), reported with the other config problems. */
import type { ConfigProblem } from "../errors.ts";
import type { IdentityProvidersConfig } from "./config-schema.ts";
import { clientSecretOf, providerConfigProblem } from "./oidc.ts";

export function identityProviderProblems(section: IdentityProvidersConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const seen = new Set<string>();
  section.oidc.forEach((provider, i) => {
    const path = `identity_providers.oidc.${i}`;
    if (seen.has(provider.name))
      problems.push({ path: `${path}.name`, message: `two providers are named ${provider.name}` });
    seen.add(provider.name);
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
  return problems;
}
