/** Fixtures for the management API tests: an app with the API mounted, people, a memory audit log. */
import { PasswordVerifier } from "../src/authn/password-verifier.ts";
import { databasePath, openDatabase } from "../src/db/database.ts";
import { ensureAccessTokenKey } from "../src/access-tokens/index.ts";
import { type AuditEvent, AuditLog } from "../src/audit/audit-log.ts";
import { buildApp, buildIssuer } from "../src/server.ts";
import { basic, loadTestConfig, makeTempDir, req } from "./helpers.ts";

/** The audit log's events, oldest first, for assertions. */
export class TestAudit extends AuditLog {
  get events(): AuditEvent[] {
    return this.query({ limit: 1000 });
  }
}

export async function testApiApp(config: Record<string, unknown> = {}) {
  const dataDir = makeTempDir("regauth-api-");
  const loaded = await loadTestConfig(config, dataDir);
  if (!loaded.signingKey) throw new Error("no signing key");
  const db = openDatabase(databasePath(dataDir));
  const verifier = new PasswordVerifier();
  const issuer = buildIssuer(loaded, loaded.signingKey, verifier, db);
  const audit = new TestAudit(db, null, { enabled: true, retentionDays: 0, maxEvents: 0 });
  const accessTokenKey = ensureAccessTokenKey(dataDir);
  const app = buildApp(loaded, issuer, {
    db,
    audit,
    accessTokenKey,
    maxTokenLifetimeDays: loaded.config.access_tokens.max_lifetime_days ?? null,
  });
  return { app, issuer, loaded, verifier, db, dataDir, audit, accessTokenKey };
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
