/** Fixtures for the management API tests: an app with the API mounted, people, a memory audit log. */
import { PasswordVerifier } from "../src/authn/password-verifier.ts";
import { databasePath, openDatabase } from "../src/db/database.ts";
import type { AuditEvent } from "../src/audit/audit-log.ts";
import { buildApp, buildIssuer, managementServices } from "../src/server.ts";
import { basic, loadTestConfig, makeTempDir, req } from "./helpers.ts";

export async function testApiApp(config: Record<string, unknown> = {}) {
  const dataDir = makeTempDir("regauth-api-");
  const loaded = await loadTestConfig(config, dataDir);
  if (!loaded.signingKey) throw new Error("no signing key");
  const db = openDatabase(databasePath(dataDir));
  const verifier = new PasswordVerifier();
  const issuer = buildIssuer(loaded, loaded.signingKey, verifier, db);
  // The same audit log and key as serve: the token path's (src/server.ts managementServices).
  const services = managementServices(loaded, issuer, db);
  const app = buildApp(loaded, issuer, services);
  const audit = {
    log: services.audit,
    /** Every event, oldest first (queued ones too: call `await audit.log.flush()` first for those). */
    get events(): AuditEvent[] {
      return services.audit.query({ limit: 1000 });
    },
  };
  return { app, issuer, loaded, verifier, db, dataDir, audit, accessTokenKey: services.accessTokenKey };
}

export type ApiApp = Awaited<ReturnType<typeof testApiApp>>;

export interface CallOptions {
  auth?: [string, string] | string | null;
  body?: unknown;
  rawBody?: string | Uint8Array | ReadableStream;
  headers?: Record<string, string>;
}

export async function call(
  t: ApiApp,
  method: string,
  path: string,
  options: CallOptions = {},
): Promise<{
  status: number;
  body: Record<string, unknown> & { errors?: { code: string; message: string }[] };
  res: Response;
}> {
  const headers: Record<string, string> = { ...options.headers };
  if (Array.isArray(options.auth)) headers.authorization = basic(options.auth[0], options.auth[1]);
  else if (typeof options.auth === "string") headers.authorization = `Bearer ${options.auth}`;
  let body: string | Uint8Array | ReadableStream | undefined = options.rawBody;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers["content-type"] ??= "application/json";
  }
  const res = await t.app.handle(
    req(`/api/v1${path}`, { method, headers, ...(body !== undefined ? { body } : {}) }),
  );
  const text = await res.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = { text };
  }
  return { status: res.status, body: parsed, res };
}
