/**
 * One shape for every kind of identity provider (OpenID Connect, GitHub), so the sign-in pages
 * and the re-check sweep are written once: start, finish, re-check, and the rules (who is let
 * in, which groups and labels the claims give).
 */
import {
  type GithubProviderConfig,
  maxUncheckedSecondsOf,
  type OidcProviderConfig,
} from "./config-schema.ts";
import {
  finishGithubSignIn,
  type GithubProvider,
  githubAdmissionProblem,
  makeGithubProvider,
  recheckGithub,
  startGithubSignIn,
} from "./github.ts";
import { type AccountRules, admissionProblem, claimFacts, labelsFromClaims } from "./links.ts";
import {
  finishSignIn,
  makeProvider,
  type OidcProvider,
  type PendingSignIn,
  type ProviderIdentity,
  recheck,
  startSignIn,
} from "./oidc.ts";

export type DriverResult =
  | { kind: "ok"; identity: ProviderIdentity }
  | { kind: "refused"; reason: string }
  | { kind: "unreachable"; reason: string };

export interface SignInDriver {
  /** The URL segment: /sign-in/KIND/NAME. */
  kind: "oidc" | "github";
  name: string;
  displayName: string;
  rules: AccountRules;
  revalidateAfterSeconds: number;
  /** An identity not re-checked successfully for this long loses access (max_unchecked_seconds). */
  maxUncheckedSeconds: number;
  start(next: string, nowUnix: number): Promise<{ url: URL; pending: PendingSignIn }>;
  /** Throws only when the provider cannot be reached. */
  finish(pending: PendingSignIn, callbackUrl: URL): Promise<DriverResult>;
  recheck(credential: string, subject: string): Promise<DriverResult>;
  admission(claims: Record<string, unknown>): string | null;
  groups(claims: Record<string, unknown>): string[];
  labels(claims: Record<string, unknown>): Record<string, string[]>;
}

export function oidcDriver(
  config: OidcProviderConfig,
  publicUrl: string | undefined,
  prefix: string,
): SignInDriver {
  const provider: OidcProvider = makeProvider(config, publicUrl, prefix);
  return {
    kind: "oidc",
    name: config.name,
    displayName: provider.displayName,
    rules: config,
    revalidateAfterSeconds: config.revalidate_after_seconds,
    maxUncheckedSeconds: maxUncheckedSecondsOf(config),
    start: (next, now) => startSignIn(provider, next, now),
    finish: (pending, url) => finishSignIn(provider, pending, url),
    recheck: (credential, subject) => recheck(provider, credential, subject),
    admission: (claims) => admissionProblem(config, claimFacts(config, claims)),
    groups: (claims) => claimFacts(config, claims).groups,
    labels: (claims) => labelsFromClaims(config, claims),
  };
}

export function githubDriver(
  config: GithubProviderConfig,
  publicUrl: string | undefined,
  prefix: string,
): SignInDriver {
  const provider: GithubProvider = makeGithubProvider(config, publicUrl, prefix);
  const teamsOf = (claims: Record<string, unknown>) =>
    Array.isArray(claims.teams) ? claims.teams.filter((t): t is string => typeof t === "string") : [];
  return {
    kind: "github",
    name: config.name,
    displayName: provider.displayName,
    rules: { ...config, user_claim: "login" },
    revalidateAfterSeconds: config.revalidate_after_seconds,
    maxUncheckedSeconds: maxUncheckedSecondsOf(config),
    start: (next, now) => startGithubSignIn(provider, next, now),
    async finish(pending, url) {
      const result = await finishGithubSignIn(provider, pending, url);
      if (result.kind === "unreachable") throw new Error(result.reason);
      return result;
    },
    recheck: (credential, subject) => recheckGithub(provider, credential, subject),
    admission: (claims) => githubAdmissionProblem(config, claims),
    groups: teamsOf,
    labels(claims): Record<string, string[]> {
      const teams = teamsOf(claims);
      return config.teams_as_labels && teams.length > 0 ? { teams } : {};
    },
  };
}
