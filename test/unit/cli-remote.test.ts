/**
 * The remote back-end and the stored login: RemoteClient against a small Bun.serve stand-in for
 * the API (the real API is tested end to end in test/e2e/cli-remote.e2e.test.ts), and the
 * credentials file with hostile contents.
 */
import { afterAll, beforeEach, describe, expect, it } from "bun:test";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { CommandFailed } from "../../src/cli/args.ts";
import { clientFromArgs } from "../../src/cli/backend.ts";
import { parseArgs } from "../../src/cli/args.ts";
import {
  credentialsPath,
  MAX_CREDENTIALS_BYTES,
  readStoredLogin,
  writeStoredLogin,
} from "../../src/cli/credentials.ts";
import { LocalClient } from "../../src/cli/local-client.ts";
import { isLoopbackHost, parseServerUrl, RemoteClient } from "../../src/cli/remote-client.ts";
import { main } from "../../src/main.ts";
import { ALICE, CREATED_TOKEN, fakeClient, fakeIo } from "../cli-fakes.ts";
import { makeTempDir } from "../helpers.ts";

interface Seen {
  method: string;
  path: string;
  authorization: string | null;
  body: unknown;
}

/** A stand-in for /api/v1 with just what these tests need. */
function stubApi() {
  const seen: Seen[] = [];
  let nextId = 40;
  const revoked = new Set<number>();
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(request) {
      const url = new URL(request.url);
      const text = await request.text();
      const body = text === "" ? null : JSON.parse(text);
      const authorization = request.headers.get("authorization");
      seen.push({ method: request.method, path: url.pathname + url.search, authorization, body });
      const error = (status: number, code: string, message: string) =>
        Response.json({ errors: [{ code, message }] }, { status });
      const bearer = authorization?.startsWith("Bearer ") ? authorization.slice(7) : null;
      if (url.pathname === "/api/v1/tokens" && request.method === "POST") {
        if (authorization !== `Basic ${btoa("alice:alice-password")}`)
          return error(401, "UNAUTHORIZED", "authentication failed");
        if (body.name === "regauth-cli@taken") return error(409, "CONFLICT", "token name taken");
        return Response.json(
          {
            ...CREATED_TOKEN,
            id: nextId++,
            name: body.name,
            scopes: body.scopes,
            secret: `regauth_pat_${nextId}`,
          },
          { status: 201 },
        );
      }
      if (bearer === null || !bearer.startsWith("regauth_pat_") || revoked.has(Number(bearer.slice(12)) - 1))
        return error(401, "UNAUTHORIZED", "authentication failed");
      const tokenMatch = /^\/api\/v1\/tokens\/(\d+)$/.exec(url.pathname);
      if (tokenMatch && request.method === "DELETE") {
        revoked.add(Number(tokenMatch[1]));
        return Response.json({ ...CREATED_TOKEN, id: Number(tokenMatch[1]), secret: undefined });
      }
      if (url.pathname === "/api/v1/users" && request.method === "GET")
        return Response.json({ items: [ALICE], next_cursor: null });
      if (url.pathname === "/api/v1/users/bob") return error(404, "NOT_FOUND", 'no user "bob"');
      if (url.pathname === "/api/v1/users/forbidden")
        return error(403, "DENIED", "only administrators may\ndo that");
      if (url.pathname === "/api/v1/users/html")
        return new Response("<html>bad gateway</html>", { status: 502 });
      if (url.pathname === "/api/v1/users/slow") {
        await Bun.sleep(3000);
        return Response.json(ALICE);
      }
      if (url.pathname === "/api/v1/users/huge") return new Response("x".repeat(40 * 1024 * 1024));
      if (url.pathname === "/api/v1/users/redirect")
        return Response.redirect("https://elsewhere.example/", 302);
      return error(404, "NOT_FOUND", "no such route");
    },
  });
  return { server, seen, url: `http://127.0.0.1:${server.port}` };
}

const api = stubApi();
afterAll(() => api.server.stop(true));

describe("RemoteClient", () => {
  const client = new RemoteClient(
    parseServerUrl(api.url, { insecure: false }),
    { kind: "bearer", token: "regauth_pat_1" },
    fetch,
    1000,
  );

  it("sends the token as a Bearer credential and parses a page", async () => {
    expect(await client.listUsers({ state: "enabled" }, { limit: 500 })).toEqual({
      items: [ALICE],
      next_cursor: null,
    });
    expect(api.seen.at(-1)).toMatchObject({
      method: "GET",
      path: "/api/v1/users?state=enabled&limit=500",
      authorization: "Bearer regauth_pat_1",
    });
  });

  const failures: [string, RegExp][] = [
    ["bob", /^no user "bob"$/],
    ["forbidden", /^only administrators may do that$/], // one line, whatever the server sends
    ["html", /answered 502$/],
    ["slow", /cannot reach .*: no answer within 1 s/],
    ["huge", /too large/],
    ["redirect", /redirect \(302\)/],
  ];
  for (const [name, reason] of failures) {
    it(`maps a failing answer (${name}) to one line`, async () => {
      const error = await client.getUser({ name }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CommandFailed);
      expect((error as Error).message).toMatch(reason);
    });
  }

  it("says when the server is not there", async () => {
    const gone = new RemoteClient(new URL("http://127.0.0.1:1"), { kind: "bearer", token: "t" });
    expect(((await gone.me().catch((e: unknown) => e)) as Error).message).toMatch(
      /^cannot reach http:\/\/127\.0\.0\.1:1: /,
    );
  });

  it("names the way out when the token is refused", async () => {
    const stale = new RemoteClient(new URL(api.url), { kind: "bearer", token: "not-a-token" });
    expect(((await stale.listUsers({}, {}).catch((e: unknown) => e)) as Error).message).toMatch(
      /refused the stored token.*regauth login/,
    );
  });

  it("escapes path parameters", async () => {
    await client.getUser({ name: "../../tokens/1" }).catch(() => {});
    expect(api.seen.at(-1)?.path).toBe("/api/v1/users/..%2F..%2Ftokens%2F1");
  });
});

describe("server URLs", () => {
  const cases: [string, boolean, string | RegExp][] = [
    ["https://auth.example.com/", false, "https://auth.example.com"],
    ["https://auth.example.com/prefix/", false, "https://auth.example.com/prefix"],
    ["http://127.0.0.1:5001", false, "http://127.0.0.1:5001"],
    ["http://[::1]:5001", false, "http://[::1]:5001"],
    ["http://localhost:5001", false, "http://localhost:5001"],
    ["http://auth.example.com", false, /refusing plain http to auth\.example\.com/],
    ["http://auth.example.com", true, "http://auth.example.com"],
    ["http://127.0.0.1.evil.example", false, /refusing plain http/],
    ["ftp://auth.example.com", false, /must start with https/],
    ["https://alice:pw@auth.example.com", false, /must not contain a user name/],
    ["https://auth.example.com/?x=1", false, /must not have a query/],
    ["auth.example.com", false, /is not a URL/],
  ];
  for (const [text, insecure, expected] of cases) {
    it(`${text}${insecure ? " --insecure" : ""}`, () => {
      if (typeof expected === "string")
        expect(parseServerUrl(text, { insecure }).href.replace(/\/$/, "")).toBe(expected);
      else expect(() => parseServerUrl(text, { insecure })).toThrow(expected);
    });
  }

  it("knows loopback", () => {
    for (const host of ["127.0.0.1", "127.8.9.10", "[::1]", "localhost", "x.localhost"])
      expect(isLoopbackHost(host)).toBe(true);
    for (const host of ["10.0.0.1", "::2", "localhost.example.com", "128.0.0.1"])
      expect(isLoopbackHost(host)).toBe(false);
  });
});

describe("the credentials file", () => {
  let dir = "";
  let path = "";
  beforeEach(() => {
    dir = makeTempDir("regauth-credentials-");
    path = join(dir, "regauth", "credentials.json");
  });

  it("lives under $XDG_CONFIG_HOME, else ~/.config (a relative XDG_CONFIG_HOME is ignored)", () => {
    expect(credentialsPath({ XDG_CONFIG_HOME: "/x/config", HOME: "/home/a" })).toBe(
      "/x/config/regauth/credentials.json",
    );
    expect(credentialsPath({ HOME: "/home/a" })).toBe("/home/a/.config/regauth/credentials.json");
    expect(credentialsPath({ XDG_CONFIG_HOME: "relative", HOME: "/home/a" })).toBe(
      "/home/a/.config/regauth/credentials.json",
    );
  });

  it("is written 0600 in a 0700 directory, atomically, whatever the umask", () => {
    const umask = process.umask(0o000);
    try {
      writeStoredLogin(path, { url: "https://a", token_id: 1, token: "regauth_pat_x" });
      writeStoredLogin(path, { url: "https://b", token_id: 2, token: "regauth_pat_y" });
    } finally {
      process.umask(umask);
    }
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, "regauth")).mode & 0o777).toBe(0o700);
    expect(readStoredLogin(path)).toEqual({ url: "https://b", token_id: 2, token: "regauth_pat_y" });
    expect(readdirSync(join(dir, "regauth"))).toEqual(["credentials.json"]); // no temporary left
  });

  it("replaces a symlink instead of writing through it", () => {
    mkdirSync(join(dir, "regauth"), { recursive: true });
    const target = join(dir, "elsewhere");
    writeFileSync(target, "keep");
    symlinkSync(target, path);
    writeStoredLogin(path, { url: "https://a", token_id: 1, token: "t" });
    expect(readFileSync(target, "utf8")).toBe("keep");
    expect(readStoredLogin(path)?.token).toBe("t");
  });

  it("is absent: null", () => {
    expect(readStoredLogin(path)).toBeNull();
  });

  const hostile: [string, string | Buffer, RegExp, number?][] = [
    ["not JSON", "{url: nope", /is not valid JSON; remove it and run regauth login URL again/],
    ["JSON null", "null", /is not a regauth login/],
    ["an array", "[1,2]", /is not a regauth login/],
    ["a number for the token", '{"url":"https://a","token_id":1,"token":5}', /is not a regauth login/],
    ["a string id", '{"url":"https://a","token_id":"1","token":"t"}', /is not a regauth login/],
    ["a fractional id", '{"url":"https://a","token_id":1.5,"token":"t"}', /is not a regauth login/],
    ["no url", '{"token_id":1,"token":"t"}', /is not a regauth login/],
    ["binary junk", Buffer.from([0xff, 0xfe, 0x00, 0x01]), /is not valid JSON/],
    [
      "a huge file",
      `{"url":"${"a".repeat(MAX_CREDENTIALS_BYTES)}","token_id":1,"token":"t"}`,
      /is too large/,
    ],
    [
      "readable by others",
      '{"url":"https://a","token_id":1,"token":"t"}',
      /may be read by others \(mode 644\).*chmod 600/,
      0o644,
    ],
  ];
  for (const [what, contents, reason, mode] of hostile) {
    it(`refuses ${what} with a clear message`, () => {
      mkdirSync(join(dir, "regauth"), { recursive: true });
      writeFileSync(path, contents);
      chmodSync(path, mode ?? 0o600);
      expect(() => readStoredLogin(path)).toThrow(reason);
    });
  }

  it("refuses a directory in its place", () => {
    mkdirSync(path, { recursive: true });
    expect(() => readStoredLogin(path)).toThrow(/is not a regular file/);
  });
});

describe("choosing the back-end", () => {
  const home = makeTempDir("regauth-home-");
  const env = { XDG_CONFIG_HOME: home, HOME: home };
  const args = (argv: string[]) => parseArgs(argv, ["config", "data-dir", "remote", "output"], ["insecure"]);
  const loginPath = join(home, "regauth", "credentials.json");

  it("is the default data directory without flags or a login", () => {
    expect(clientFromArgs(args(["list"]), env)).toBeInstanceOf(LocalClient);
  });
  it("is the stored login's server when there is one", () => {
    writeStoredLogin(loginPath, { url: "https://auth.example.com", token_id: 1, token: "t" });
    const client = clientFromArgs(args(["list"]), env);
    expect(client).toBeInstanceOf(RemoteClient);
    expect(client.description).toBe("https://auth.example.com");
  });
  it("is the data directory with --data-dir or --config, login or not", () => {
    expect(clientFromArgs(args(["list", "--data-dir", "/tmp/x"]), env)).toBeInstanceOf(LocalClient);
    expect(clientFromArgs(args(["list", "--config", "/tmp/x.yml"]), env)).toBeInstanceOf(LocalClient);
  });
  it("is --remote URL with its login or $REGAUTH_TOKEN, and says so when there is neither", () => {
    expect(clientFromArgs(args(["list", "--remote", "https://auth.example.com/"]), env).description).toBe(
      "https://auth.example.com",
    );
    expect(() => clientFromArgs(args(["list", "--remote", "https://other.example.com"]), env)).toThrow(
      /not logged in to https:\/\/other\.example\.com: run regauth login/,
    );
    expect(
      clientFromArgs(args(["list", "--remote", "https://other.example.com"]), { ...env, REGAUTH_TOKEN: "x" }),
    ).toBeInstanceOf(RemoteClient);
    expect(() => clientFromArgs(args(["list", "--remote", "http://other.example.com"]), env)).toThrow(
      /refusing plain http/,
    );
  });
  it("refuses --remote with --data-dir", () => {
    expect(() => clientFromArgs(args(["list", "--remote", "https://a", "--data-dir", "/x"]), env)).toThrow(
      /exclude each other/,
    );
  });
});

describe("regauth login and logout against the stand-in", () => {
  const home = makeTempDir("regauth-login-");
  const saved = process.env.XDG_CONFIG_HOME;
  process.env.XDG_CONFIG_HOME = home;
  afterAll(() => {
    if (saved === undefined) delete process.env.XDG_CONFIG_HOME;
    else process.env.XDG_CONFIG_HOME = saved;
  });
  const path = join(home, "regauth", "credentials.json");
  const io = () => fakeIo(fakeClient().client, { secrets: ["alice-password"] });

  it("refuses a wrong password and stores nothing", async () => {
    const out = fakeIo(fakeClient().client, { secrets: ["wrong"] });
    expect(await main(["login", api.url, "--username", "alice"], out)).toBe(1);
    expect(out.stderr).toMatch(
      /^regauth login: .*refused the user name or password \(authentication failed\)\n$/,
    );
    expect(existsSync(path)).toBe(false);
  });

  it("creates an api token named after the machine and stores it 0600", async () => {
    const out = io();
    expect(await main(["login", `${api.url}/`, "--username", "alice"], out)).toBe(0);
    const request = api.seen.findLast((s) => s.method === "POST");
    expect(request?.body).toMatchObject({ scopes: ["api"], repository_patterns: ["*"] });
    expect((request?.body as { name: string }).name).toStartWith("regauth-cli@");
    const stored = readStoredLogin(path);
    expect(stored).toMatchObject({ url: api.url });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(out.stdout).toContain(`logged in to ${api.url} as alice`);
    expect(out.stdout).not.toContain(stored?.token ?? "?");
    expect(out.secretPrompts).toEqual(["Password: "]);
  });

  it("then runs management commands remotely", async () => {
    const out = io();
    // the real back-end choice: main with a CommandIo whose client comes from the flags
    const { processIo } = await import("../../src/cli/backend.ts");
    const real = { ...processIo(), out: out.out, err: out.err };
    expect(await main(["user", "list"], real)).toBe(0);
    expect(out.stdout).toMatch(/^NAME\s+STATE.*\nalice\s+enabled/);
    expect(api.seen.at(-1)?.authorization).toBe(`Bearer ${readStoredLogin(path)?.token}`);
  });

  it("a second login replaces the first and revokes its token", async () => {
    const first = readStoredLogin(path);
    const out = io();
    expect(await main(["login", api.url, "--username", "alice"], out)).toBe(0);
    expect(readStoredLogin(path)?.token_id).not.toBe(first?.token_id);
    expect(
      api.seen.some((s) => s.method === "DELETE" && s.path === `/api/v1/tokens/${first?.token_id}`),
    ).toBe(true);
  });

  it("logout revokes the token and deletes the file; a remote command then fails clearly", async () => {
    const stored = readStoredLogin(path);
    const out = io();
    expect(await main(["logout"], out)).toBe(0);
    expect(out.stdout).toContain(`revoked token ${stored?.token_id}`);
    expect(existsSync(path)).toBe(false);
    const after = io();
    expect(
      await main(["user", "list", "--remote", api.url], {
        ...after,
        client: (await import("../../src/cli/backend.ts")).processIo().client,
      }),
    ).toBe(1);
    expect(after.stderr).toMatch(/not logged in to .*: run regauth login/);
    expect(await main(["logout"], io())).toBe(0); // nothing to do
  });

  it("logout deletes the file even when the server cannot be reached, and says so", async () => {
    writeStoredLogin(path, { url: "http://127.0.0.1:1", token_id: 9, token: "regauth_pat_9" });
    const out = io();
    expect(await main(["logout"], out)).toBe(1);
    expect(out.stderr).toMatch(
      /could not revoke token 9: cannot reach[\s\S]*deleted .* anyway.*regauth token revoke 9/,
    );
    expect(existsSync(path)).toBe(false);
  });

  it("a new login replaces a damaged credentials file", async () => {
    mkdirSync(join(home, "regauth"), { recursive: true });
    writeFileSync(path, "garbage", { mode: 0o644 });
    const out = io();
    expect(await main(["login", api.url, "--username", "alice"], out)).toBe(0);
    expect(out.stderr).toMatch(/replacing .*credentials\.json: .*may be read by others/);
    expect(readStoredLogin(path)?.url).toBe(api.url);
    expect(await main(["logout"], io())).toBe(0);
  });

  it("refuses plain http off loopback and bad arguments", async () => {
    const out = io();
    expect(await main(["login", "http://auth.example.com", "--username", "alice"], out)).toBe(1);
    expect(out.stderr).toMatch(/refusing plain http/);
    expect(await main(["login"], io())).toBe(2);
    expect(await main(["login", api.url, "--password", "x"], io())).toBe(2);
    expect(await main(["login", api.url, "extra"], io())).toBe(2);
  });
});
