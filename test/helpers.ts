/** Shared test fixtures: configs, keys, in-process requests, token verification. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeProtectedHeader, importJWK, jwtVerify } from "jose";
import { PasswordVerifier } from "../src/authn/password-verifier.ts";
import { type LoadedConfig, prepareConfig } from "../src/config/load.ts";
import { buildApp, buildIssuer } from "../src/server.ts";

const tempDirs: string[] = [];

/**
 * A fresh temporary directory, removed after the whole run (test/setup.ts, preloaded by
 * bunfig.toml, calls removeTempDirs from a global afterAll; bun test emits no process "exit").
 * Not per scope: fixtures such as test keys are shared across describe blocks.
 */
export function makeTempDir(prefix = "regauth-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

export function removeTempDirs(): void {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** bcrypt at the lowest cost, so tests stay fast; the server accepts any cost. */
export function hashPassword(password: string): string {
  return Bun.password.hashSync(password, { algorithm: "bcrypt", cost: 4 });
}

/** Validates a config object as if it were a file, with a throwaway data directory. */
export async function loadTestConfig(
  config: Record<string, unknown>,
  dataDir = makeTempDir(),
): Promise<LoadedConfig> {
  const withDefaults = { token: { issuer: "test-issuer", expiration: 300 }, ...config };
  return prepareConfig(withDefaults, "test config", { dataDir, env: {} });
}

/** An in-process app for `app.handle(req(...))` tests. */
export async function testApp(config: Record<string, unknown>) {
  const loaded = await loadTestConfig(config);
  if (!loaded.signingKey) throw new Error("test config has no signing key");
  const verifier = new PasswordVerifier();
  const issuer = buildIssuer(loaded, loaded.signingKey, verifier);
  // The failure-latency floor times a few hash checks in the background at start: done before the
  // test's own requests, so tests that count hash checks count only theirs.
  await issuer.failureLatency?.calibrated;
  const app = buildApp(loaded, issuer);
  return { app, issuer, loaded, verifier };
}

export function req(path: string, init: RequestInit = {}): Request {
  return new Request(`http://localhost${path}`, init);
}

export function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
}

export interface VerifiedToken {
  header: ReturnType<typeof decodeProtectedHeader>;
  claims: {
    iss: string;
    sub: string;
    aud: string;
    exp: number;
    nbf: number;
    iat: number;
    jti: string;
    access: { type: string; class?: string; name: string; actions: string[] }[];
  };
}

/** Verifies a token the way a registry would (signature, iss, aud) with jose; throws if invalid. */
export async function verifyToken(
  token: string,
  loaded: LoadedConfig,
  audience: string,
): Promise<VerifiedToken> {
  const key = loaded.signingKey;
  if (!key) throw new Error("no signing key");
  const publicKey = await importJWK(key.publicJwk, key.alg);
  const { payload } = await jwtVerify(token, publicKey, {
    issuer: loaded.config.token.issuer,
    audience,
    algorithms: [key.alg],
  });
  return { header: decodeProtectedHeader(token), claims: payload as unknown as VerifiedToken["claims"] };
}
