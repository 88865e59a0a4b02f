/** The little of oidc-provider's API the tests use (it ships no types; @types/oidc-provider would be one more package for this). */
declare module "oidc-provider" {
  import type { IncomingMessage, ServerResponse } from "node:http";
  interface FoundAccount {
    accountId: string;
    claims(): Promise<Record<string, unknown>>;
  }
  interface ProviderClient {
    grantTypeAllowed(grant: string): boolean;
  }
  export default class Provider {
    constructor(
      issuer: string,
      configuration: Record<string, unknown> & {
        issueRefreshToken?: (ctx: unknown, client: ProviderClient, code: unknown) => Promise<boolean>;
        findAccount?: (ctx: unknown, id: string) => Promise<FoundAccount | undefined>;
      },
    );
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    on(event: string, listener: (...args: unknown[]) => void): this;
  }
}
