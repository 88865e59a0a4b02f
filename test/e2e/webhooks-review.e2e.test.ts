/**
 * The security review of the outgoing webhooks (issue 11 item 4), end to end against the compiled
 * binary with the default URL policy (nothing private allowed) and a real receiver on loopback
 * that must never be reached: every spelling of a refused address is a 400 naming the rule (never
 * a 500) through the API and exit 1 through the CLI; a host name that resolves to loopback
 * (this machine's own name, from /etc/hosts) is accepted as a name and refused at delivery,
 * without a retry; the signing secret is in the create answer only, never in the listing, the
 * history, the audit log, serve's log or the database file.
 */
import { describe, expect, it } from "bun:test";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { BINARY, freePort, type Regauth, run, startRegauth } from "./harness.ts";

const CONFIG = `server: {addr: "127.0.0.1:{{PORT}}"}
token: {issuer: regauth, expiration: 300, services: [registry]}
webhooks:
  timeout_seconds: 2
  retry_base_seconds: 1
  retry_max_seconds: 2
`;

async function api(regauth: Regauth, auth: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${regauth.url}/api/v1${path}`, {
    method,
    headers: { authorization: auth, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, text, json: JSON.parse(text) as Record<string, unknown> };
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(100);
  }
}

describe("webhooks under attack, with the compiled binary", async () => {
  const regauth = await startRegauth({ configYaml: CONFIG });
  const password = (await regauth.stdout.waitFor(/^password: (\S+)$/m))[1] as string;
  const admin = `Basic ${btoa(`admin:${password}`)}`;
  const offline = ["--data-dir", regauth.dataDir, "--config", join(regauth.dir, "auth_config.yml")];
  const port = await freePort();
  let reached = 0;
  const receiver = Bun.serve({
    hostname: "127.0.0.1",
    port,
    fetch() {
      reached++;
      return new Response("reached");
    },
  });

  const refused = [
    `http://127.0.0.1:${port}/`,
    `http://2130706433:${port}/`,
    `http://0x7f000001:${port}/`,
    `http://0177.0.0.1:${port}/`,
    `http://127.1:${port}/`,
    `http://0:${port}/`,
    `http://[::]:${port}/`,
    `http://[::1]:${port}/`,
    `http://[::ffff:7f00:1]:${port}/`,
    `http://[::127.0.0.1]:${port}/`,
    `http://[64:ff9b::7f00:1]:${port}/`,
    `http://[64:ff9b:1::7f00:1]:${port}/`,
    `http://[2002:7f00:1::]:${port}/`,
    `http://[2001:0:4136:e378:8000:63bf:80ff:fffe]:${port}/`,
    `http://[::ffff:0:7f00:1]:${port}/`,
    `http://localhost:${port}/`,
    `http://localhost.:${port}/`,
    `http://LOCALHOST:${port}/`,
    `http://a.localhost:${port}/`,
    `http://ｌｏｃａｌｈｏｓｔ:${port}/`,
    `http://user@127.0.0.1:${port}/`,
    `http:\\\\127.0.0.1:${port}\\`,
    "http://169.254.169.254/latest/meta-data/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://0251.0376.0251.0376/",
    "http://100.100.100.200/",
    "http://10.0.0.1/",
    "http://[fd00::1]/",
    "https://%zz@hooks.example.com/",
    "file:///etc/passwd",
    "gopher://example.com/",
  ];

  it(`refuses ${refused.length} spellings of private addresses with a 400 naming the rule, never a 500`, async () => {
    for (const [i, url] of refused.entries()) {
      const r = await api(regauth, admin, "POST", "/webhooks", {
        name: `ssrf-${i}`,
        url,
        repository_patterns: ["*"],
      });
      expect({ url, status: r.status }).toEqual({ url, status: 400 });
      expect(r.text).toContain("body.url");
    }
    const listed = await api(regauth, admin, "GET", "/webhooks");
    expect(listed.json.items).toEqual([]);
  });

  it("the CLI refuses them too, exit 1 with the rule", async () => {
    const added = await run([
      BINARY,
      "webhook",
      "add",
      "tunnel",
      `http://[2002:7f00:1::]:${port}/`,
      ...offline,
    ]);
    expect(added.exitCode).toBe(1);
    expect(added.stderr).toContain("6to4");
    expect(added.stdout).not.toContain("whsec_");
  });

  it("offline, the CLI refuses what the API refuses: a name against the pattern, a URL over 2,048 characters", async () => {
    for (const [args, message] of [
      [["Upper", "https://hooks.example.com/"], "name"],
      [["../x", "https://hooks.example.com/"], "name"],
      [[`a${"b".repeat(64)}`, "https://hooks.example.com/"], "name"],
      [["long", `https://hooks.example.com/${"a".repeat(100_000)}`], "url"],
    ] as const) {
      const added = await run([BINARY, "webhook", "add", ...args, ...offline]);
      expect({ args: args[0].slice(0, 10), exit: added.exitCode }).toEqual({
        args: args[0].slice(0, 10),
        exit: 1,
      });
      expect(added.stderr).toContain(message);
      expect(added.stdout).not.toContain("whsec_");
    }
    const listed = await run([BINARY, "webhook", "list", "--output", "json", ...offline]);
    expect(JSON.parse(listed.stdout)).toEqual([]);
  });

  it("a name that resolves to loopback (this machine's own) is refused at delivery, at once, never connected to", async () => {
    const name = hostname().toLowerCase();
    const answers = await Bun.dns.lookup(name, {}).catch(() => []);
    if (!answers.some((a) => a.address.startsWith("127.") || a.address === "::1")) {
      console.warn(`skipped: ${name} does not resolve to loopback here`);
      return;
    }
    const created = await api(regauth, admin, "POST", "/webhooks", {
      name: "own-name",
      url: `http://${name}:${port}/hook`,
      repository_patterns: ["*"],
    });
    expect(created.status).toBe(201);
    expect((await api(regauth, admin, "POST", "/webhooks/own-name/test", {})).status).toBe(201);
    const failed = await waitFor("the refusal", async () => {
      const r = await api(regauth, admin, "GET", "/webhooks/own-name/deliveries");
      const first = (r.json.items as Record<string, unknown>[])[0];
      return first?.status === "failed" ? first : undefined;
    });
    expect(failed.attempts).toBe(1);
    expect(String(failed.last_error)).toContain(`${name} resolves to 127.`);
    expect(reached).toBe(0);
  });

  it("the secret is shown once: not in the listing, the history, the audit log, serve's log or the database", async () => {
    const created = await api(regauth, admin, "POST", "/webhooks", {
      name: "secretive",
      url: "https://hooks.example.com/regauth",
      repository_patterns: ["*"],
    });
    expect(created.status).toBe(201);
    const secret = created.json.secret as string;
    expect(secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    const rotated = await api(regauth, admin, "POST", "/webhooks/secretive/secret", {});
    const secret2 = rotated.json.secret as string;
    expect(secret2).not.toBe(secret);
    await api(regauth, admin, "POST", "/webhooks/secretive/test", {});
    const seen = [
      (await api(regauth, admin, "GET", "/webhooks")).text,
      (await api(regauth, admin, "GET", "/webhooks/secretive")).text,
      (await api(regauth, admin, "GET", "/webhooks/secretive/deliveries")).text,
      (await api(regauth, admin, "GET", "/audit?limit=500")).text,
      (await run([BINARY, "webhook", "list", "--output", "json", ...offline])).stdout,
      (await run([BINARY, "webhook", "deliveries", "secretive", ...offline])).stdout,
      (await run([BINARY, "audit", "--output", "json", ...offline])).stdout,
      regauth.stderr.text,
      regauth.stdout.text,
    ];
    // Each place was looked at, not an empty answer.
    const markers = [
      "secretive",
      "secretive",
      "webhook.test",
      "webhook.created",
      "secretive",
      "webhook.test",
      "webhook.created",
    ];
    for (const [i, marker] of markers.entries())
      expect({ i, found: seen[i]?.includes(marker) }).toEqual({ i, found: true });
    const database = readFileSync(join(regauth.dataDir, "regauth.db"));
    for (const s of [secret, secret2]) {
      for (const text of seen) expect(text).not.toContain(s);
      expect(database.includes(Buffer.from(s))).toBe(false);
      expect(database.includes(Buffer.from(s.slice("whsec_".length)))).toBe(false);
    }
  });

  it("after all that, serve is healthy", async () => {
    expect((await fetch(`${regauth.url}/healthz`)).status).toBe(200);
    receiver.stop(true);
  });
});
