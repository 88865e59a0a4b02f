/** Fixtures for the web interface tests: an app with the pages, people, and a cookie-keeping client. */
import { grant, parseGrantee } from "../src/accounts/permissions.ts";
import { createUser } from "../src/accounts/users.ts";
import { createRobot } from "../src/robots/robots.ts";
import { quickHash } from "./accounts-helpers.ts";
import { type ApiApp, testApiApp } from "./api-helpers.ts";
import { req } from "./helpers.ts";

export const PASSWORD = "correct horse battery";

/**
 * An app with the web interface and the people of the API's authorization matrix: `root`
 * (administrator), `nsadmin` (admin on team/*), `alice` (a plain user), and the robot `team+ci`.
 */
export async function testWebApp(config: Record<string, unknown> = {}) {
  const t = await testApiApp(config);
  const now = Math.floor(Date.now() / 1000);
  for (const [name, isAdmin] of [
    ["root", true],
    ["nsadmin", false],
    ["alice", false],
  ] as const)
    createUser(t.db, { name, passwordHash: quickHash(PASSWORD), isAdmin, isEnabled: true, nowUnix: now });
  grant(t.db, parseGrantee("nsadmin"), "team/*", "admin", now);
  createRobot(t.db, { ownerNamespace: "team", name: "ci", description: "", nowUnix: now });
  await t.issuer.failureLatency?.calibrated;
  return t;
}

export interface WebResponse {
  status: number;
  text: string;
  headers: Headers;
  location: string | null;
}

/** A browser in miniature: keeps cookies, sends forms with the page's CSRF token. */
export class WebClient {
  readonly cookies = new Map<string, string>();
  /** The last CSRF token seen in a page. */
  csrf: string | null = null;
  constructor(
    readonly t: ApiApp,
    readonly prefix = "",
  ) {}

  async request(
    method: string,
    path: string,
    init: { body?: string; headers?: Record<string, string> } = {},
  ) {
    const headers: Record<string, string> = { ...init.headers };
    if (this.cookies.size > 0)
      headers.cookie = [...this.cookies].map(([name, value]) => `${name}=${value}`).join("; ");
    const res = await this.t.app.handle(
      req(`${this.prefix}${path}`, {
        method,
        headers,
        ...(init.body !== undefined ? { body: init.body } : {}),
      }),
    );
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(";");
      const eq = pair?.indexOf("=") ?? -1;
      if (!pair || eq < 0) continue;
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      if (/Max-Age=0/i.test(line) || value === "") this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    const text = await res.text();
    const csrf = /name="csrf" value="([^"]+)"/.exec(text)?.[1];
    if (csrf) this.csrf = csrf;
    return {
      status: res.status,
      text,
      headers: res.headers,
      location: res.headers.get("location"),
    } as WebResponse;
  }

  get(path: string, headers: Record<string, string> = {}) {
    return this.request("GET", path, { headers });
  }

  /** POSTs a form; `csrf` undefined: the last token seen, null: none. */
  post(
    path: string,
    fields: [string, string][] | Record<string, string>,
    options: { csrf?: string | null; headers?: Record<string, string> } = {},
  ) {
    const form = new URLSearchParams(Array.isArray(fields) ? fields : Object.entries(fields));
    const csrf = options.csrf === undefined ? this.csrf : options.csrf;
    if (csrf !== null && !form.has("csrf")) form.set("csrf", csrf);
    return this.request("POST", path, {
      body: form.toString(),
      headers: { "content-type": "application/x-www-form-urlencoded", ...options.headers },
    });
  }

  async signIn(username: string, password = PASSWORD): Promise<WebResponse> {
    await this.get("/sign-in");
    const signedIn = await this.post("/sign-in", { username, password });
    // The session's CSRF token, as a browser would find it on the next page.
    if (signedIn.status === 303) await this.get("/account");
    return signedIn;
  }
}
