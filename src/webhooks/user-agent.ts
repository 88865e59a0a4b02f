/** The User-Agent of webhook deliveries: regauth/<version>, the version `regauth --version` prints. */
import pkg from "../../package.json" with { type: "json" };

declare const REGAUTH_VERSION: string | undefined;

export const WEBHOOK_USER_AGENT = `regauth/${typeof REGAUTH_VERSION === "string" ? REGAUTH_VERSION : `${pkg.version}-dev`}`;
