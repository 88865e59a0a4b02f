/**
 * The token endpoint in process (`app.handle`), table-driven in the style of PocketBase's
 * ApiScenario: each row is a request and what must come back. Covers token.md (GET), oauth.md
 * (POST), scope.md, and the hostile HTTP inputs of security.md §7.3 A and B.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import type { Grant } from "../../src/token/sign.ts";
import { log } from "../../src/log.ts";
import { basic, hashPassword, req, testApp, verifyToken } from "../helpers.ts";

type TestApp = Awaited<ReturnType<typeof testApp>>;

const ALICE_PASSWORD = "alice-pw";
const BOB_PASSWORD = "pa:ss:word"; // RFC 7617 §2: the password may contain ':'

const users = {
  alice: { password: hashPassword(ALICE_PASSWORD), labels: { project: ["alpha"] } },
  bob: { password: hashPassword(BOB_PASSWORD) },
};
const acl = [
  { match: { ip: "10.9.0.0/16" }, actions: ["*"] },
  { match: { account: "alice", name: "alice/*" }, actions: ["pull", "push"] },
  { match: { account: "/.+/", name: "${labels:project}/*" }, actions: ["pull", "push"] },
  { match: { account: "", name: "public/*" }, actions: ["pull"] },
  { match: { account: "/.+/", type: "registry", name: "catalog" }, actions: ["*"] },
  { match: { account: "/.+/" }, actions: ["pull"] },
];

const CONFIGS = {
  main: { users: { ...users, "": {} }, acl },
  closed: { users, acl },
  prefixed: { server: { path_prefix: "/registry-auth" }, users: { ...users, "": {} }, acl },
  services: { token: { issuer: "test-issuer", expiration: 300, services: ["registry"] }, users, acl },
  realIp: {
    server: { real_ip_header: "X-Forwarded-For", real_ip_pos: -1 },
    users: { ...users, "": {} },
    acl,
  },
  hsts: { server: { hsts: true }, users: { ...users, "": {} }, acl },
} as const;
type ConfigName = keyof typeof CONFIGS;

const apps = {} as Record<ConfigName, TestApp>;
beforeAll(async () => {
  for (const name of Object.keys(CONFIGS) as ConfigName[]) apps[name] = await testApp({ ...CONFIGS[name] });
  log.setLevel("warn"); // "authentication failed" lines are expected here
});
afterAll(() => log.setLevel("info"));

interface Scenario {
  name: string;
  config?: ConfigName;
  method?: "GET" | "POST" | "PUT" | "DELETE";
  url: string;
  headers?: Record<string, string>;
  /** An application/x-www-form-urlencoded body (POST). */
  form?: Record<string, string | string[]>;
  expectedStatus: number;
  /** For errors: the `errors[0].code` of the JSON envelope. */
  expectedCode?: string;
  expectedSubject?: string;
  expectedAccess?: Grant[];
  /** POST responses list what was granted in `scope` (oauth.md). */
  expectedScope?: string;
  expectedAudience?: string;
  expectedHeaders?: Record<string, string | null>;
  /** Substrings the body must contain (e.g. part of an error message). */
  expectedContent?: string[];
}

function formBody(form: Record<string, string | string[]>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(form))
    for (const item of Array.isArray(value) ? value : [value]) params.append(key, item);
  return params.toString();
}

const FORM_HEADERS = { "content-type": "application/x-www-form-urlencoded" };
const ALICE = { authorization: basic("alice", ALICE_PASSWORD) };
const REALM = 'Basic realm="test-issuer"';

const scenarios: Scenario[] = [
  // GET (token.md).
  {
    name: "anonymous pull of a public repository",
    url: "/auth?service=registry&scope=repository:public/app:pull",
    expectedStatus: 200,
    expectedSubject: "",
    expectedAccess: [{ type: "repository", name: "public/app", actions: ["pull"] }],
  },
  {
    name: "anonymous push is a partial grant, still 200",
    url: "/auth?service=registry&scope=repository:public/app:push,pull",
    expectedStatus: 200,
    expectedAccess: [{ type: "repository", name: "public/app", actions: ["pull"] }],
  },
  {
    name: "anonymous, nothing allowed: 200 with empty actions",
    url: "/auth?service=registry&scope=repository:alice/app:pull",
    expectedStatus: 200,
    expectedAccess: [{ type: "repository", name: "alice/app", actions: [] }],
  },
  {
    name: "docker login: no scope, credentials checked, empty access",
    url: "/auth?service=registry&account=alice&client_id=docker&offline_token=true",
    headers: ALICE,
    expectedStatus: 200,
    expectedSubject: "alice",
    expectedAccess: [],
  },
  {
    name: "empty scope= is authentication only",
    url: "/auth?service=registry&scope=",
    headers: ALICE,
    expectedStatus: 200,
    expectedAccess: [],
  },
  {
    name: "alice pushes to her namespace; delete is not granted",
    url: "/auth?service=registry&scope=repository:alice/app:push,pull,delete",
    headers: ALICE,
    expectedStatus: 200,
    expectedSubject: "alice",
    expectedAccess: [{ type: "repository", name: "alice/app", actions: ["pull", "push"] }],
  },
  {
    name: "repeated scope parameters",
    url: "/auth?service=registry&scope=repository:alice/app:push&scope=repository:bob/app:push,pull",
    headers: ALICE,
    expectedStatus: 200,
    expectedAccess: [
      { type: "repository", name: "alice/app", actions: ["push"] },
      { type: "repository", name: "bob/app", actions: ["pull"] },
    ],
  },
  {
    name: "space-separated scopes in one parameter",
    url: "/auth?service=registry&scope=repository:alice/app:push%20repository:bob/app:push,pull",
    headers: ALICE,
    expectedStatus: 200,
    expectedAccess: [
      { type: "repository", name: "alice/app", actions: ["push"] },
      { type: "repository", name: "bob/app", actions: ["pull"] },
    ],
  },
  {
    name: "duplicate scopes merge, actions sorted",
    url: "/auth?service=registry&scope=repository:alice/app:push&scope=repository:alice/app:pull,push",
    headers: ALICE,
    expectedStatus: 200,
    expectedAccess: [{ type: "repository", name: "alice/app", actions: ["pull", "push"] }],
  },
  {
    name: "a label placeholder grants alice her project",
    url: "/auth?service=registry&scope=repository:alpha/tool:push",
    headers: ALICE,
    expectedStatus: 200,
    expectedAccess: [{ type: "repository", name: "alpha/tool", actions: ["push"] }],
  },
  {
    name: "host:port names and classes pass through",
    url: "/auth?service=registry&scope=repository:localhost:5000/alice/app:pull&scope=repository(plugin):alice/plug:pull",
    headers: ALICE,
    expectedStatus: 200,
    expectedAccess: [
      { type: "repository", name: "localhost:5000/alice/app", actions: ["pull"] },
      { type: "repository", class: "plugin", name: "alice/plug", actions: ["pull"] },
    ],
  },
  {
    name: "catalog for a logged-in user",
    url: "/auth?service=registry&scope=registry:catalog:*",
    headers: ALICE,
    expectedStatus: 200,
    expectedAccess: [{ type: "registry", name: "catalog", actions: ["*"] }],
  },
  {
    name: "no catalog for anonymous",
    url: "/auth?service=registry&scope=registry:catalog:*",
    expectedStatus: 200,
    expectedAccess: [{ type: "registry", name: "catalog", actions: [] }],
  },
  {
    name: "/auth/token is the same endpoint",
    url: "/auth/token?service=registry&scope=repository:alice/app:push",
    headers: ALICE,
    expectedStatus: 200,
    expectedAccess: [{ type: "repository", name: "alice/app", actions: ["push"] }],
  },
  {
    name: "the service becomes a string aud",
    url: "/auth?service=my%20registry&scope=repository:alice/app:pull",
    headers: ALICE,
    expectedStatus: 200,
    expectedAudience: "my registry",
  },
  {
    name: "token responses are not cacheable",
    url: "/auth?service=registry",
    expectedStatus: 200,
    expectedHeaders: {
      "cache-control": "no-store",
      "content-type": "application/json",
      "strict-transport-security": null,
    },
  },
  // Account parameter.
  {
    name: "account equal to the user",
    url: "/auth?service=registry&account=alice",
    headers: ALICE,
    expectedStatus: 200,
  },
  {
    name: "account different from the user",
    url: "/auth?service=registry&account=bob",
    headers: ALICE,
    expectedStatus: 400,
    expectedContent: ["account"],
  },
  { name: "account without credentials", url: "/auth?service=registry&account=alice", expectedStatus: 400 },
  {
    name: "account given twice",
    url: "/auth?service=registry&account=alice&account=alice",
    headers: ALICE,
    expectedStatus: 400,
  },
  // Credentials.
  {
    name: "wrong password",
    url: "/auth?service=registry",
    headers: { authorization: basic("alice", "wrong") },
    expectedStatus: 401,
    expectedCode: "UNAUTHORIZED",
    expectedHeaders: { "www-authenticate": REALM },
  },
  {
    name: "unknown user",
    url: "/auth?service=registry",
    headers: { authorization: basic("mallory", "x") },
    expectedStatus: 401,
    expectedHeaders: { "www-authenticate": REALM },
  },
  {
    name: "anonymous when there is no anonymous user",
    config: "closed",
    url: "/auth?service=registry&scope=repository:public/app:pull",
    expectedStatus: 401,
    expectedHeaders: { "www-authenticate": REALM },
  },
  {
    name: "Basic credentials that are not base64",
    url: "/auth?service=registry",
    headers: { authorization: "Basic !!!notbase64" },
    expectedStatus: 400,
    expectedContent: ["base64"],
  },
  {
    name: "Basic credentials without a colon",
    url: "/auth?service=registry",
    headers: { authorization: `Basic ${btoa("useronly")}` },
    expectedStatus: 400,
  },
  {
    name: "Basic with nothing after the scheme",
    url: "/auth?service=registry",
    headers: { authorization: "Basic" },
    expectedStatus: 400,
  },
  {
    name: "empty user with a password",
    url: "/auth?service=registry",
    headers: { authorization: basic("", "secret") },
    expectedStatus: 401,
  },
  {
    name: "user with an empty password",
    url: "/auth?service=registry",
    headers: { authorization: basic("alice", "") },
    expectedStatus: 401,
  },
  {
    name: "empty user and password is anonymous",
    url: "/auth?service=registry&scope=repository:public/app:pull",
    headers: { authorization: basic("", "") },
    expectedStatus: 200,
    expectedSubject: "",
    expectedAccess: [{ type: "repository", name: "public/app", actions: ["pull"] }],
  },
  {
    name: "a password containing ':' is split at the first colon",
    url: "/auth?service=registry&scope=repository:bob/app:pull",
    headers: { authorization: basic("bob", BOB_PASSWORD) },
    expectedStatus: 200,
    expectedSubject: "bob",
    expectedAccess: [{ type: "repository", name: "bob/app", actions: ["pull"] }],
  },
  {
    name: "the scheme is case-insensitive",
    url: "/auth?service=registry",
    headers: { authorization: `bAsIc ${btoa(`alice:${ALICE_PASSWORD}`)}` },
    expectedStatus: 200,
    expectedSubject: "alice",
  },
  {
    name: "another scheme",
    url: "/auth?service=registry",
    headers: { authorization: "Bearer abc.def.ghi" },
    expectedStatus: 400,
    expectedContent: ["scheme"],
  },
  {
    name: "two credentials in one header",
    url: "/auth?service=registry",
    headers: { authorization: `${basic("alice", ALICE_PASSWORD)}, ${basic("bob", BOB_PASSWORD)}` },
    expectedStatus: 400,
  },
  {
    name: "a NUL in the username is not truncated",
    url: "/auth?service=registry",
    headers: { authorization: basic("alice\u0000evil", ALICE_PASSWORD) },
    expectedStatus: 401,
  },
  {
    name: "an overlong username is refused before hashing",
    url: "/auth?service=registry",
    headers: { authorization: basic("a".repeat(10_000), "x") },
    expectedStatus: 400,
  },
  {
    name: "an overlong password is refused before hashing",
    url: "/auth?service=registry",
    headers: { authorization: basic("alice", "p".repeat(100_000)) },
    expectedStatus: 400,
  },
  // Scopes.
  {
    name: "NUL in scope",
    url: "/auth?service=registry&scope=repository:alice/app%00:pull",
    headers: ALICE,
    expectedStatus: 400,
  },
  {
    name: "newline in scope",
    url: "/auth?service=registry&scope=repository:alice/app:pull%0D%0Alevel=error",
    headers: ALICE,
    expectedStatus: 400,
  },
  {
    name: "malformed scope",
    url: "/auth?service=registry&scope=repository:alice",
    headers: ALICE,
    expectedStatus: 400,
    expectedContent: ["invalid scope"],
  },
  {
    name: "10,000 scopes",
    url: `/auth?service=registry&${Array.from({ length: 10_000 }, (_, i) => `scope=repository:r${i}:pull`).join("&")}`,
    headers: ALICE,
    expectedStatus: 400,
    expectedCode: "TOO_MANY_SCOPES",
  },
  {
    name: "10,000 space-separated scopes",
    url: `/auth?service=registry&scope=${Array.from({ length: 10_000 }, (_, i) => `repository:r${i}:pull`).join("%20")}`,
    headers: ALICE,
    expectedStatus: 400,
    expectedCode: "TOO_MANY_SCOPES",
  },
  // Service.
  {
    name: "missing service",
    url: "/auth?scope=repository:public/app:pull",
    expectedStatus: 400,
    expectedContent: ["service"],
  },
  {
    name: "an overlong service (it would become the aud of a huge token)",
    url: `/auth?service=${"s".repeat(100_000)}`,
    headers: ALICE,
    expectedStatus: 400,
    expectedContent: ["service"],
  },
  {
    name: "a 255-character service is fine",
    url: `/auth?service=${"s".repeat(255)}`,
    headers: ALICE,
    expectedStatus: 200,
  },
  {
    name: "an overlong unknown service is not echoed whole",
    config: "services",
    url: `/auth?service=${"s".repeat(100_000)}`,
    headers: ALICE,
    expectedStatus: 400,
  },
  {
    name: "a configured service",
    config: "services",
    url: "/auth?service=registry",
    headers: ALICE,
    expectedStatus: 200,
    expectedAudience: "registry",
  },
  {
    name: "an unknown service",
    config: "services",
    url: "/auth?service=evil",
    headers: ALICE,
    expectedStatus: 400,
    expectedContent: ["unknown service"],
  },
  // POST (oauth.md).
  {
    name: "POST password grant",
    method: "POST",
    url: "/auth",
    headers: FORM_HEADERS,
    form: {
      grant_type: "password",
      username: "alice",
      password: ALICE_PASSWORD,
      service: "registry",
      scope: "repository:alice/app:pull,push",
      client_id: "containerd-client",
      access_type: "offline",
    },
    expectedStatus: 200,
    expectedSubject: "alice",
    expectedAccess: [{ type: "repository", name: "alice/app", actions: ["pull", "push"] }],
    expectedScope: "repository:alice/app:pull,push",
  },
  {
    name: "POST with space-separated scopes; denied ones are left out of scope",
    method: "POST",
    url: "/auth/token",
    headers: FORM_HEADERS,
    form: {
      grant_type: "password",
      username: "alice",
      password: ALICE_PASSWORD,
      service: "registry",
      scope: "repository:alice/app:push repository:bob/app:push",
    },
    expectedStatus: 200,
    expectedAccess: [
      { type: "repository", name: "alice/app", actions: ["push"] },
      { type: "repository", name: "bob/app", actions: [] },
    ],
    expectedScope: "repository:alice/app:push",
  },
  {
    name: "POST with repeated scope fields",
    method: "POST",
    url: "/auth",
    headers: FORM_HEADERS,
    form: {
      grant_type: "password",
      username: "alice",
      password: ALICE_PASSWORD,
      service: "registry",
      scope: ["repository:alice/app:push", "repository:bob/app:pull"],
    },
    expectedStatus: 200,
    expectedAccess: [
      { type: "repository", name: "alice/app", actions: ["push"] },
      { type: "repository", name: "bob/app", actions: ["pull"] },
    ],
  },
  {
    name: "POST with Basic credentials and no username field",
    method: "POST",
    url: "/auth",
    headers: { ...FORM_HEADERS, ...ALICE },
    form: { service: "registry", scope: "repository:alice/app:pull" },
    expectedStatus: 200,
    expectedSubject: "alice",
  },
  {
    name: "POST with a wrong password",
    method: "POST",
    url: "/auth",
    headers: FORM_HEADERS,
    form: { grant_type: "password", username: "alice", password: "nope", service: "registry" },
    expectedStatus: 401,
    expectedHeaders: { "www-authenticate": REALM },
  },
  {
    name: "POST password grant without a username",
    method: "POST",
    url: "/auth",
    headers: FORM_HEADERS,
    form: { grant_type: "password", password: "x", service: "registry" },
    expectedStatus: 400,
  },
  {
    name: "POST with different credentials in header and form",
    method: "POST",
    url: "/auth",
    headers: { ...FORM_HEADERS, ...ALICE },
    form: { grant_type: "password", username: "bob", password: BOB_PASSWORD, service: "registry" },
    expectedStatus: 400,
  },
  {
    name: "POST with an unknown grant_type",
    method: "POST",
    url: "/auth",
    headers: FORM_HEADERS,
    form: { grant_type: "client_credentials", service: "registry" },
    expectedStatus: 400,
    expectedCode: "UNSUPPORTED_GRANT_TYPE",
    expectedContent: ['"error":"unsupported_grant_type"'],
  },
  {
    name: "POST refresh_token grant with a token this server never issued",
    method: "POST",
    url: "/auth",
    headers: FORM_HEADERS,
    form: { grant_type: "refresh_token", refresh_token: "abc", service: "registry" },
    expectedStatus: 401,
    expectedCode: "UNAUTHORIZED",
  },
  {
    name: "POST refresh_token grant without refresh_token",
    method: "POST",
    url: "/auth",
    headers: FORM_HEADERS,
    form: { grant_type: "refresh_token", service: "registry" },
    expectedStatus: 400,
    expectedCode: "INVALID_REQUEST",
  },
  {
    name: "POST with a JSON body",
    method: "POST",
    url: "/auth",
    headers: { "content-type": "application/json" },
    form: { grant_type: "password" },
    expectedStatus: 400,
  },
  {
    name: "POST with a NUL in the form scope",
    method: "POST",
    url: "/auth",
    headers: FORM_HEADERS,
    form: {
      grant_type: "password",
      username: "alice",
      password: ALICE_PASSWORD,
      service: "registry",
      scope: "repository:a\u0000:pull",
    },
    expectedStatus: 400,
  },
  // Routing.
  { name: "unknown path", url: "/v2/", expectedStatus: 404, expectedCode: "NOT_FOUND" },
  {
    name: "other method",
    method: "PUT",
    url: "/auth?service=registry",
    expectedStatus: 404,
    expectedCode: "NOT_FOUND",
  },
  {
    name: "path_prefix serves the endpoint under the prefix",
    config: "prefixed",
    url: "/registry-auth/auth?service=registry&scope=repository:public/app:pull",
    expectedStatus: 200,
    expectedAccess: [{ type: "repository", name: "public/app", actions: ["pull"] }],
  },
  {
    name: "path_prefix: /auth/token under the prefix",
    config: "prefixed",
    url: "/registry-auth/auth/token?service=registry",
    expectedStatus: 200,
  },
  {
    name: "path_prefix: not at the root",
    config: "prefixed",
    url: "/auth?service=registry",
    expectedStatus: 404,
  },
  // Client address from a proxy header (docker_auth real_ip_header / real_ip_pos).
  {
    name: "real IP: the last entry (pos -1) feeds ACL ip rules",
    config: "realIp",
    url: "/auth?service=registry&scope=repository:secret/app:push",
    headers: { "x-forwarded-for": "203.0.113.7, 10.9.1.2" },
    expectedStatus: 200,
    expectedAccess: [{ type: "repository", name: "secret/app", actions: ["push"] }],
  },
  {
    name: "real IP: a spoofed first entry does not count",
    config: "realIp",
    url: "/auth?service=registry&scope=repository:secret/app:push",
    headers: { "x-forwarded-for": "10.9.1.2, 203.0.113.7" },
    expectedStatus: 200,
    expectedAccess: [{ type: "repository", name: "secret/app", actions: [] }],
  },
  {
    name: "real IP: IPv6 entries parse",
    config: "realIp",
    url: "/auth?service=registry",
    headers: { "x-forwarded-for": "2001:db8::1" },
    expectedStatus: 200,
  },
  {
    name: "real IP: header missing",
    config: "realIp",
    url: "/auth?service=registry",
    expectedStatus: 400,
    expectedContent: ["client address"],
  },
  {
    name: "real IP: header empty",
    config: "realIp",
    url: "/auth?service=registry",
    headers: { "x-forwarded-for": " " },
    expectedStatus: 400,
  },
  {
    name: "real IP: garbage",
    config: "realIp",
    url: "/auth?service=registry",
    headers: { "x-forwarded-for": "not-an-ip" },
    expectedStatus: 400,
    expectedContent: ["client address"],
  },
  {
    name: "real IP: a host:port is not an address",
    config: "realIp",
    url: "/auth?service=registry",
    headers: { "x-forwarded-for": "10.9.1.2:5000" },
    expectedStatus: 400,
  },
  // HSTS.
  {
    name: "hsts on a token response",
    config: "hsts",
    url: "/auth?service=registry",
    expectedStatus: 200,
    expectedHeaders: { "strict-transport-security": "max-age=63072000; includeSubDomains" },
  },
  {
    name: "hsts on a 401",
    config: "hsts",
    url: "/auth?service=registry",
    headers: { authorization: basic("alice", "wrong") },
    expectedStatus: 401,
    expectedHeaders: { "strict-transport-security": "max-age=63072000; includeSubDomains" },
  },
  {
    name: "hsts on a 404",
    config: "hsts",
    url: "/nope",
    expectedStatus: 404,
    expectedHeaders: { "strict-transport-security": "max-age=63072000; includeSubDomains" },
  },
];

describe.each(scenarios)("$name", (scenario) => {
  it(`→ ${scenario.expectedStatus}`, async () => {
    const { app, loaded } = apps[scenario.config ?? "main"];
    const init: RequestInit = { method: scenario.method ?? "GET", headers: scenario.headers ?? {} };
    if (scenario.form) init.body = formBody(scenario.form);
    const response = await app.handle(req(scenario.url, init));
    const text = await response.text();
    expect({ status: response.status, body: text.slice(0, 300) }).toMatchObject({
      status: scenario.expectedStatus,
    });

    // Every body is JSON, small, and free of stack traces.
    const body = JSON.parse(text) as Record<string, unknown>;
    expect(text.length).toBeLessThan(8192);
    expect(text).not.toMatch(/\bat .*\.(ts|js):\d+|node_modules|\/src\//);
    for (const [name, value] of Object.entries(scenario.expectedHeaders ?? {}))
      expect(response.headers.get(name)).toBe(value);
    for (const content of scenario.expectedContent ?? []) expect(text).toContain(content);

    if (response.status !== 200) {
      const errors = body.errors as { code: string; message: string }[];
      expect(errors).toHaveLength(1);
      expect(typeof errors[0]?.message).toBe("string");
      expect(body.error).toBe(errors[0]?.code.toLowerCase());
      if (scenario.expectedCode) expect(errors[0]?.code).toBe(scenario.expectedCode);
      if (response.status !== 401) expect(response.headers.get("www-authenticate")).toBeNull();
      expect(body.token).toBeUndefined();
      return;
    }

    expect(body.access_token).toBe(body.token);
    expect(response.headers.get("cache-control")).toBe("no-store");
    const expectedAudience =
      scenario.expectedAudience ??
      new URL(`http://x${scenario.url}`).searchParams.get("service") ??
      "registry";
    const { claims } = await verifyToken(body.token as string, loaded, expectedAudience);
    expect(body.expires_in).toBe(claims.exp - claims.iat);
    expect(body.expires_in as number).toBeGreaterThanOrEqual(60);
    expect(Date.parse(body.issued_at as string) / 1000).toBe(claims.iat);
    if (scenario.expectedSubject !== undefined) expect(claims.sub).toBe(scenario.expectedSubject);
    if (scenario.expectedAccess) expect(claims.access).toEqual(scenario.expectedAccess);
    if (scenario.expectedScope !== undefined) expect(body.scope).toBe(scenario.expectedScope);
  });
});

// Review M5: behind an appending proxy the first X-Forwarded-For entries are whatever the client
// wrote; only the one the nearest proxy appended is known. The default position is therefore -1.
describe("real_ip_header without real_ip_pos (the default: the entry the nearest proxy appended)", () => {
  const aclWithDelete = [
    { match: { ip: "10.0.0.0/8" }, actions: ["*"] },
    { match: { account: "/.+/" }, actions: ["pull"] },
  ];
  const shapes: { name: string; header: string; headers: [string, string][]; expectedIp: string }[] = [
    {
      // nginx: proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      name: "nginx $proxy_add_x_forwarded_for",
      header: "X-Forwarded-For",
      headers: [["x-forwarded-for", "10.1.2.3, 203.0.113.50"]],
      expectedIp: "203.0.113.50",
    },
    {
      // HAProxy `option forwardfor` adds its own header line after the client's.
      name: "HAProxy option forwardfor (a second header line)",
      header: "X-Forwarded-For",
      headers: [
        ["x-forwarded-for", "10.1.2.3"],
        ["x-forwarded-for", "203.0.113.50"],
      ],
      expectedIp: "203.0.113.50",
    },
    {
      // nginx: proxy_set_header X-Real-IP $remote_addr; (replaces whatever the client sent)
      name: "X-Real-IP, a single value",
      header: "X-Real-IP",
      headers: [["x-real-ip", "203.0.113.50"]],
      expectedIp: "203.0.113.50",
    },
  ];

  for (const shape of shapes) {
    it(`${shape.name}: a spoofed 10.1.2.3 gets no delete through an ip: 10.0.0.0/8 rule`, async () => {
      const { app, loaded } = await testApp({
        server: { real_ip_header: shape.header },
        users: { alice: { password: hashPassword(ALICE_PASSWORD) } },
        acl: aclWithDelete,
      });
      expect(loaded.config.server.real_ip_pos).toBe(-1);
      const res = await app.handle(
        req("/auth?service=registry&scope=repository:prod/app:delete,pull", {
          headers: [...shape.headers, ["authorization", basic("alice", ALICE_PASSWORD)]],
        }),
      );
      expect(res.status).toBe(200);
      const { claims } = await verifyToken(
        ((await res.json()) as { token: string }).token,
        loaded,
        "registry",
      );
      expect(claims.access).toEqual([{ type: "repository", name: "prod/app", actions: ["pull"] }]);
    });

    it(`${shape.name}: guesses with varying spoofed entries are throttled by the appended address`, async () => {
      const { app } = await testApp({
        server: { real_ip_header: shape.header },
        users: { alice: { password: hashPassword(ALICE_PASSWORD) } },
        acl: aclWithDelete,
      });
      const statuses: number[] = [];
      for (let i = 0; i < 14; i++) {
        const spoofed = shape.headers.map(([name, value]): [string, string] => [
          name,
          value.replace("10.1.2.3", `10.1.2.${i}`),
        ]);
        const res = await app.handle(
          req("/auth?service=registry", {
            headers: [...spoofed, ["authorization", basic("alice", `guess-${i}`)]],
          }),
        );
        statuses.push(res.status);
        // distribution's errcode list and containerd spell it TOOMANYREQUESTS (issue 10).
        if (res.status === 429)
          expect(((await res.json()) as { errors: { code: string }[] }).errors[0]?.code).toBe(
            "TOOMANYREQUESTS",
          );
      }
      // The pair's burst is 10: the rest are refused, whatever the client wrote first.
      expect(statuses.filter((s) => s === 401)).toHaveLength(10);
      expect(statuses.filter((s) => s === 429)).toHaveLength(4);
    });
  }
});
