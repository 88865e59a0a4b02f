import { describe, expect, it } from "bun:test";
import { hashPassword } from "../helpers.ts";
import {
  decodeToken,
  dockerLogin,
  fetchToken,
  makeOciImage,
  skopeoPull,
  skopeoPush,
  startRegauth,
  startRegistry,
} from "./harness.ts";

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";

describe("regauth with the real registry 2.8, skopeo and docker login", async () => {
  const regauth = await startRegauth({
    configYaml: `
server:
  addr: 127.0.0.1:{{PORT}}
token:
  issuer: e2e-issuer
  expiration: 300
users:
  alice:
    password: "${hashPassword("alice-secret")}"
  bob:
    password: "${hashPassword("bob-secret")}"
  root:
    password: "${hashPassword("root-secret")}"
    labels:
      group: [admins]
  "": {}
acl:
  # registry:catalog:* only for members of the admins group (a label match, as docker_auth does it)
  - match: {type: registry, name: catalog, labels: {group: admins}}
    actions: ["*"]
  - match: {type: registry}
    actions: []
  - match: {account: alice}
    actions: ["*"]
  - match: {account: bob}
    actions: [pull]
  - match: {account: root}
    actions: ["*"]
  - match: {account: ""}
    actions: [pull]
`,
  });
  const realm = `${regauth.url}/auth`;
  const registry = await startRegistry({
    realm,
    issuer: "e2e-issuer",
    service: "registry",
    certificatePath: regauth.certificatePath,
  });
  const image = makeOciImage();

  /** A request to the registry with a bearer token, as a client would send it after the token dance. */
  const registryRequest = (path: string, token: string, init: RequestInit = {}) =>
    fetch(`${registry.url}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${token}`, accept: OCI_MANIFEST, ...init.headers },
    });

  it("lets alice push and pull with skopeo", async () => {
    const push = await skopeoPush(image, `${registry.host}/alice/app:v1`, "alice:alice-secret");
    expect(push.stderr).not.toContain("denied");
    expect(push.exitCode).toBe(0);
    const pull = await skopeoPull(`${registry.host}/alice/app:v1`, "alice:alice-secret");
    expect(pull.exitCode).toBe(0);
  });

  it("lets anonymous pull but not push", async () => {
    const pull = await skopeoPull(`${registry.host}/alice/app:v1`);
    expect(pull.exitCode).toBe(0);
    const push = await skopeoPush(image, `${registry.host}/anon/app:v1`);
    expect(push.exitCode).not.toBe(0);
    expect(push.stderr).toMatch(/denied|unauthorized/);
  });

  it("gives anonymous a token the registry accepts for pull, and nothing more", async () => {
    const { token } = await fetchToken(realm, {
      service: "registry",
      scopes: ["repository:alice/app:pull,push"],
    });
    expect(token).toBeDefined();
    expect(decodeToken(token as string).claims.access).toEqual([
      { type: "repository", name: "alice/app", actions: ["pull"] },
    ]);
    const manifest = await registryRequest("/v2/alice/app/manifests/v1", token as string);
    expect(manifest.status).toBe(200);
    const upload = await registryRequest("/v2/alice/app/blobs/uploads/", token as string, { method: "POST" });
    expect(upload.status).toBe(401);
  });

  it("issues aud = the requested service, so the registry refuses a token for another service", async () => {
    const other = await fetchToken(
      realm,
      { service: "another-registry", scopes: ["repository:alice/app:pull"] },
      "alice:alice-secret",
    );
    expect(decodeToken(other.token as string).claims.aud).toBe("another-registry");
    const refused = await registryRequest("/v2/alice/app/manifests/v1", other.token as string);
    expect(refused.status).toBe(401);
    expect(refused.headers.get("www-authenticate")).toContain('error="invalid_token"');
  });

  it("lets a pull-only user pull but not push", async () => {
    const pull = await skopeoPull(`${registry.host}/alice/app:v1`, "bob:bob-secret");
    expect(pull.exitCode).toBe(0);
    const push = await skopeoPush(image, `${registry.host}/bob/app:v1`, "bob:bob-secret");
    expect(push.exitCode).not.toBe(0);
    expect(push.stderr).toMatch(/denied|unauthorized/);
  });

  it("denies a push with a wrong password", async () => {
    const push = await skopeoPush(image, `${registry.host}/alice/app:v2`, "alice:wrong");
    expect(push.exitCode).not.toBe(0);
    expect(push.stderr).toMatch(/unauthorized|authentication required|401/i);
  });

  it("grants registry:catalog:* to an admin by ACL label and not to an ordinary user", async () => {
    const challenge = await fetch(`${registry.url}/v2/_catalog`);
    expect(challenge.status).toBe(401);
    expect(challenge.headers.get("www-authenticate")).toContain('scope="registry:catalog:*"');

    const admin = await fetchToken(
      realm,
      { service: "registry", scopes: ["registry:catalog:*"] },
      "root:root-secret",
    );
    expect(decodeToken(admin.token as string).claims.access).toEqual([
      { type: "registry", name: "catalog", actions: ["*"] },
    ]);
    const listed = await registryRequest("/v2/_catalog", admin.token as string);
    expect(listed.status).toBe(200);
    expect(((await listed.json()) as { repositories: string[] }).repositories).toContain("alice/app");

    const ordinary = await fetchToken(
      realm,
      { service: "registry", scopes: ["registry:catalog:*"] },
      "alice:alice-secret",
    );
    expect(ordinary.status).toBe(200); // the intersection is empty, still a 200 (token.md)
    // docker_auth lists a refused scope with empty actions; that grants nothing either way.
    expect(decodeToken(ordinary.token as string).claims.access).toEqual([
      { type: "registry", name: "catalog", actions: [] },
    ]);
    const refused = await registryRequest("/v2/_catalog", ordinary.token as string);
    expect(refused.status).toBe(401);
    expect(refused.headers.get("www-authenticate")).toContain("insufficient_scope");
  });

  it("issues a token from the OAuth2 password grant as containerd sends it, which the registry accepts", async () => {
    const form = new URLSearchParams({
      grant_type: "password",
      username: "alice",
      password: "alice-secret",
      service: "registry",
      client_id: "containerd-client",
      // containerd joins scopes with spaces into one field (core/remotes/docker/auth/fetch.go)
      scope: "repository:alice/app:pull repository:alice/app:pull,push",
    });
    const res = await fetch(realm, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: form,
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { access_token: string; scope: string; expires_in: number };
    expect(body.expires_in).toBe(300);
    expect(body.scope).toBe("repository:alice/app:pull,push");
    const manifest = await registryRequest("/v2/alice/app/manifests/v1", body.access_token);
    expect(manifest.status).toBe(200);
    const upload = await registryRequest("/v2/alice/app/blobs/uploads/", body.access_token, {
      method: "POST",
    });
    expect(upload.status).toBe(202);
  });

  it("accepts docker login with the right password and refuses a wrong one", async () => {
    const ok = await dockerLogin(registry.host, "alice", "alice-secret");
    expect(ok.stdout + ok.stderr).toContain("Login Succeeded");
    expect(ok.exitCode).toBe(0);
    const bad = await dockerLogin(registry.host, "alice", "wrong");
    expect(bad.exitCode).not.toBe(0);
  });

  it("answers a wrong password with 401 and WWW-Authenticate", async () => {
    const res = await fetchToken(realm, { service: "registry" }, "alice:wrong");
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toBe('Basic realm="e2e-issuer"');
    expect(res.headers.get("content-type")).toContain("application/json");
    expect(JSON.parse(res.text).errors[0].code).toBe("UNAUTHORIZED");
  });

  it("caps the number of scopes: 400 from regauth, 431/413 from the HTTP layer beyond its limits", async () => {
    const scopes = (n: number) => "&scope=repository:a:pull".repeat(n);
    const capped = await fetch(`${realm}?service=registry${scopes(200)}`);
    expect(capped.status).toBe(400);
    expect(((await capped.json()) as { error: string }).error).toBe("too_many_scopes");
    expect((await fetch(`${realm}?service=registry${scopes(10_000)}`)).status).toBe(431);
    const form = `service=registry${scopes(10_000)}`;
    const post = await fetch(realm, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: form,
    });
    expect(post.status).toBe(413);
  });

  it("never shows a stack trace or an internal error to a client", async () => {
    const basicRaw = (raw: string) => ({ authorization: `Basic ${Buffer.from(raw).toString("base64")}` });
    const form = { "content-type": "application/x-www-form-urlencoded" };
    const hostile: [string, string, RequestInit][] = [
      ["not base64", "?service=registry", { headers: { authorization: "Basic !!!not-base64!!!" } }],
      ["no colon", "?service=registry", { headers: basicRaw("alice") }],
      ["empty user", "?service=registry", { headers: basicRaw(":alice-secret") }],
      ["password with colons", "?service=registry", { headers: basicRaw("alice:a:b:c") }],
      ["bearer instead of basic", "?service=registry", { headers: { authorization: "Bearer x.y.z" } }],
      ["NUL in scope", "?service=registry&scope=repository:a%00b:pull", {}],
      ["newline in scope", "?service=registry&scope=repository:a%0Ab:pull", {}],
      ["bad scope", "?service=registry&scope=:::", {}],
      ["bad percent-encoding", "?service=registry&scope=%zz", {}],
      ["10,000 scopes", `?service=registry${"&scope=repository:a:pull".repeat(10_000)}`, {}],
      ["account mismatch", "?service=registry&account=bob", { headers: basicRaw("alice:alice-secret") }],
      ["no service", "", {}],
      ["service twice", "?service=a&service=b", {}],
      ["unknown grant", "", { method: "POST", headers: form, body: "grant_type=client_credentials" }],
      [
        "refresh grant",
        "",
        { method: "POST", headers: form, body: "grant_type=refresh_token&refresh_token=x" },
      ],
      ["JSON body", "", { method: "POST", headers: { "content-type": "application/json" }, body: "{" }],
      ["form garbage", "", { method: "POST", headers: form, body: "%%%&&&===\u0000" }],
      ["huge body", "", { method: "POST", headers: form, body: "a".repeat(1_000_000) }],
      ["password grant without password", "", { method: "POST", headers: form, body: "grant_type=password" }],
    ];
    for (const [what, query, init] of hostile) {
      const res = await fetch(`${realm}${query}`, init).catch((error: Error) => error);
      if (res instanceof Error) continue; // the server closed the connection (e.g. body too large): no body shown
      const text = await res.text();
      const label = `${what}: ${res.status} ${text.slice(0, 200)}`;
      expect(label).not.toMatch(/\bat \S+ \(|\.ts:\d+|node_modules|\/\$bunfs\/|Error: |internal error/);
      expect(res.status, label).toBeGreaterThanOrEqual(400);
      expect(res.status, label).toBeLessThan(500);
      expect(text.length, label).toBeLessThan(4096);
    }
    for (const [path, init] of [
      ["/nope", {}],
      ["/auth/../../etc/passwd", {}],
      ["/auth", { method: "PUT", body: "x" }],
      ["/auth", { method: "DELETE" }],
    ] as [string, RequestInit][]) {
      const res = await fetch(`${regauth.url}${path}`, init);
      const text = await res.text();
      expect(`${path}: ${res.status} ${text}`).not.toMatch(/\bat \S+ \(|\.ts:\d+|node_modules|Error: /);
      expect(res.status).toBeLessThan(500);
    }
    // …and no password ever reaches the log.
    expect(regauth.stderr.text).not.toContain("alice-secret");
    expect(regauth.stderr.text).not.toContain("bob-secret");
    expect(regauth.stderr.text).not.toContain("root-secret");
  });
});
