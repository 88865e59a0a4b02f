/**
 * One ACME order (RFC 8555 §7.4) for the configured host by the http-01 challenge (§8.3), with
 * acme-client (RFC 8555 complete, JWS and nonces handled; no hand-written protocol here). Every
 * failure becomes an AcmeError whose message says what failed and what to check (issue 16 item 3).
 */
import { createPrivateKey, generateKeyPairSync } from "node:crypto";
import { Agent } from "node:https";
import * as acme from "acme-client";
import axios, { type AxiosAdapter, type InternalAxiosRequestConfig } from "axios";
import type { LetsEncryptConfig } from "./config-schema.ts";

/** An ACME failure, in a sentence for the log. */
export class AcmeError extends Error {
  override name = "AcmeError";
  /** The CA's Retry-After (RFC 8555 §6.6: rate limits, 503s), when it sent one. */
  readonly retryAfterMs: number | null;
  constructor(message: string, retryAfterMs: number | null = null) {
    super(message);
    this.retryAfterMs = retryAfterMs;
  }
}

/** Serves the http-01 answers (token → key authorization) until close(); throws when it cannot listen. */
export type OpenHttpChallenge = (answers: ReadonlyMap<string, string>) => { close(): Promise<void> };

export interface ObtainOptions {
  section: LetsEncryptConfig;
  accountKeyPem: Buffer;
  /** ca_file's text: the roots trusted for directory_url, instead of the system's. */
  caPem: string | null;
  openHttpChallenge: OpenHttpChallenge;
  /** The whole order's bound (ORDER_TIMEOUT_MS); tests shorten it. */
  orderTimeoutMs?: number;
}

export interface ObtainedCertificate {
  keyPem: string;
  chainPem: string;
}

/** An ACME server that accepts a connection and then says nothing must not hold an order forever. */
const REQUEST_TIMEOUT_MS = 30_000;
const MAX_RESPONSE_BYTES = 1_048_576;
/**
 * The whole order, validation polls included. axios's `timeout` is the socket's idle time, reset
 * by every byte: a CA (or a box in its path) trickling a byte every few seconds held an order, and
 * with it the start or every later renewal, for as long as it kept trickling (tried: 91 s for a
 * 1 s timeout). Let's Encrypt validates in seconds; acme-client polls for a few minutes at most.
 */
const ORDER_TIMEOUT_MS = 10 * 60_000;

/** Places an order and returns the certificate and its new key. Throws AcmeError. */
export async function obtainCertificate(options: ObtainOptions): Promise<ObtainedCertificate> {
  const timeoutMs = options.orderTimeoutMs ?? ORDER_TIMEOUT_MS;
  const abort = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      abort.abort();
      reject(
        new AcmeError(
          `the ACME order for ${options.section.host} did not finish within ${timeoutMs / 1000} s (the ACME server at ${originOf(options.section.directory_url)} answers too slowly, or not at all)`,
        ),
      );
    }, timeoutMs);
  });
  const work = orderOnce(options, abort.signal);
  work.catch(() => {}); // after the deadline its own failure (the abort) is not news
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

async function orderOnce(options: ObtainOptions, signal: AbortSignal): Promise<ObtainedCertificate> {
  const { section } = options;
  const problems = configureHttp(options.caPem, signal);
  const client = new acme.Client({ directoryUrl: section.directory_url, accountKey: options.accountKeyPem });
  const certificateKey = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
  const keyPem = certificateKey.export({ type: "pkcs8", format: "pem" }).toString();
  const [, csr] = await acme.crypto.createCsr({ commonName: section.host, altNames: [section.host] }, keyPem);
  const answers = new Map<string, string>();
  let listener: { close(): Promise<void> } | null = null;
  let stage: "ordering" | "validating" = "ordering";
  try {
    await findOrCreateAccount(client, section, problems);
    const chain = await client.auto({
      csr,
      ...(section.email !== undefined ? { email: section.email } : {}),
      // As docker_auth's autocert.AcceptTOS; docs/https-acme.md says so.
      termsOfServiceAgreed: true,
      challengePriority: ["http-01"],
      // acme-client's own pre-check fetches http://HOST/ from here, which fails behind NAT
      // without hairpinning while the CA's check succeeds: the CA's verdict is the one that counts.
      skipChallengeVerification: true,
      challengeCreateFn: async (_authz, challenge, keyAuthorization) => {
        stage = "validating";
        problems.last = null; // from here on an HTTP error is the finalization's, not the validation's
        if (challenge.type !== "http-01")
          throw new AcmeError(`the CA offered no http-01 challenge for ${section.host}`);
        answers.set(challenge.token, keyAuthorization);
        listener ??= openChallengeListener(options.openHttpChallenge, answers, section);
      },
      challengeRemoveFn: async (_authz, challenge) => {
        answers.delete(challenge.token);
      },
    });
    return { keyPem, chainPem: chain };
  } catch (error) {
    const failure = describeFailure(error, stage, section, problems.last);
    // A 429 or 503 with Retry-After: the renewal waits at least that long (src/acme/manager.ts).
    const askedMs = problems.last?.retryAfterMs ?? null;
    throw failure.retryAfterMs === null && askedMs !== null
      ? new AcmeError(failure.message, askedMs)
      : failure;
  } finally {
    await (listener as { close(): Promise<void> } | null)?.close();
  }
}

/**
 * Looks the account key's account up first (RFC 8555 §7.3.1 onlyReturnExisting), and creates it
 * only when there is none: acme-client's auto() would send newAccount with the terms again and
 * then an update carrying nothing, which pebble refuses ("Use POST-as-GET").
 */
async function findOrCreateAccount(client: acme.Client, section: LetsEncryptConfig, problems: LastProblem) {
  try {
    await client.createAccount({ onlyReturnExisting: true });
    return;
  } catch (error) {
    if (error instanceof AcmeError || !problems.last?.type.endsWith(":accountDoesNotExist")) throw error;
  }
  problems.last = null;
  await client.createAccount({
    termsOfServiceAgreed: true,
    ...(section.email !== undefined ? { contact: [`mailto:${section.email}`] } : {}),
  });
}

function openChallengeListener(
  open: OpenHttpChallenge,
  answers: ReadonlyMap<string, string>,
  section: LetsEncryptConfig,
): { close(): Promise<void> } {
  try {
    return open(answers);
  } catch (error) {
    throw new AcmeError(
      `cannot answer the http-01 challenge on ${section.http_challenge_addr}: ${(error as Error).message}`,
    );
  }
}

interface LastProblem {
  last: { status: number; type: string; detail: string; retryAfterMs: number | null } | null;
}

/**
 * acme-client's axios instance, set up once per order: ca_file's roots, a timeout, no retries of
 * its own (a 429's Retry-After of an hour would hold the start; the renewal backoff retries), and
 * network errors turned into AcmeErrors here, because its retry interceptor loses them
 * (acme-client 5.4.0 reads `response.config` of an error that has no response).
 */
function configureHttp(caPem: string | null, signal: AbortSignal): LastProblem {
  const problems: LastProblem = { last: null };
  const instance = acme.axios;
  const settings = (instance.defaults as { acmeSettings?: Record<string, number> }).acmeSettings;
  if (settings) settings.retryMaxAttempts = 0;
  instance.defaults.timeout = REQUEST_TIMEOUT_MS;
  // ACME answers are small JSON and PEM documents, and RFC 8555 has no redirects: a CA (or
  // something in its place) that sends gigabytes or points elsewhere gets an error.
  instance.defaults.maxContentLength = MAX_RESPONSE_BYTES;
  instance.defaults.maxRedirects = 0;
  // The order's deadline ends its requests under way too (their sockets closed).
  instance.defaults.signal = signal;
  instance.defaults.httpsAgent = new Agent(caPem === null ? {} : { ca: caPem });
  // The environment's HTTPS_PROXY is honoured (an appliance behind a proxy); NO_PROXY too.
  const http = axios.getAdapter("http") as AxiosAdapter;
  instance.defaults.adapter = async (config: InternalAxiosRequestConfig) => {
    try {
      return noteProblem(await http(config), problems);
    } catch (error) {
      // acme-client's interceptor makes every status an error (validateStatus false) and sorts
      // them out itself: those have a response and go on as they are.
      const { response } = error as { response?: Awaited<ReturnType<AxiosAdapter>> };
      if (response) {
        noteProblem(response, problems);
        throw error;
      }
      throw new AcmeError(`cannot reach the ACME server at ${originOf(config.url)}: ${networkReason(error)}`);
    }
  };
  return problems;
}

/** Remembers the last ACME problem document (RFC 8555 §6.7), whose type acme-client's messages drop. */
function noteProblem<R extends { status: number; data: unknown; headers?: unknown }>(
  response: R,
  problems: LastProblem,
): R {
  if (response.status < 400) return response;
  // Still the raw body here: axios parses JSON after the adapter.
  let data = response.data as { type?: unknown; detail?: unknown } | string | undefined;
  if (typeof data === "string")
    try {
      data = JSON.parse(data) as { type?: unknown; detail?: unknown };
    } catch {
      data = undefined;
    }
  const problem = typeof data === "object" && data !== null ? data : {};
  problems.last = {
    status: response.status,
    type: typeof problem.type === "string" ? problem.type : "",
    detail: typeof problem.detail === "string" ? bounded(problem.detail) : "",
    retryAfterMs: retryAfterMs((response.headers as Record<string, unknown> | undefined)?.["retry-after"]),
  };
  return response;
}

/** Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date; null when absent or unreadable. */
export function retryAfterMs(value: unknown, nowMs = Date.now()): number | null {
  if (typeof value !== "string" || value.trim() === "") return null;
  const text = value.trim();
  if (/^\d{1,10}$/.test(text)) return Number(text) * 1000;
  // Every HTTP-date form starts with the day's name; Date.parse would read "-5" as a year.
  if (!/^[A-Za-z]{3}/.test(text)) return null;
  const atMs = Date.parse(text);
  return Number.isNaN(atMs) ? null : Math.max(atMs - nowMs, 0);
}

/** The CA's words as they go into a log line (each retry logs one): the start of them. */
function bounded(text: string): string {
  return text.length > MAX_DETAIL_CHARS ? `${text.slice(0, MAX_DETAIL_CHARS)}… (cut)` : text;
}

const MAX_DETAIL_CHARS = 500;

function originOf(url: string | undefined): string {
  try {
    return new URL(url ?? "").origin;
  } catch {
    return String(url);
  }
}

function networkReason(error: unknown): string {
  const code = String((error as { code?: unknown }).code ?? "");
  const message = (error as Error).message ?? String(error);
  if (/maxContentLength/.test(message))
    return `it sent more than ${MAX_RESPONSE_BYTES / 1_048_576} MiB, and ACME answers are small (is directory_url an ACME directory?)`;
  if (code === "ECONNREFUSED") return "connection refused (check directory_url, and that the CA is up)";
  if (code === "ENOTFOUND" || code === "EAI_AGAIN")
    return "its host name does not resolve (check directory_url and this server's DNS)";
  if (code === "ECONNABORTED" || code === "ETIMEDOUT" || /timeout/i.test(message))
    return `no answer within ${REQUEST_TIMEOUT_MS / 1000} s (a firewall dropping outgoing HTTPS?)`;
  if (/CERT|SIGNATURE|ISSUER|self[- ]signed|certificate/i.test(`${code} ${message}`))
    return `its TLS certificate is not trusted (${code || message}); for a private CA such as pebble or step-ca, set server.letsencrypt.ca_file to its root`;
  return bounded(`${code ? `${code}: ` : ""}${message}`);
}

function describeFailure(
  error: unknown,
  stage: "ordering" | "validating",
  section: LetsEncryptConfig,
  problem: LastProblem["last"],
): AcmeError {
  if (error instanceof AcmeError) return error;
  const detail = bounded((error as Error).message || String(error));
  if (problem?.status === 429 || problem?.type.endsWith(":rateLimited"))
    return new AcmeError(
      `the CA refuses more orders for now (rate limited): ${problem.detail || detail}; regauth retries later with backoff (https://letsencrypt.org/docs/rate-limits/)`,
    );
  if (problem?.type.endsWith(":accountDoesNotExist") || problem?.type.endsWith(":unauthorized"))
    if (stage === "ordering")
      return new AcmeError(`the CA refused the ACME account: ${problem.detail || detail}`);
  // A failed validation comes as the challenge's error document, not as an HTTP error.
  if (stage === "validating" && problem === null)
    return new AcmeError(
      `the CA could not validate ${section.host} by http-01: ${detail}. Check that ${section.host} resolves (DNS A/AAAA) to this server and that port 80 there reaches http_challenge_addr (${section.http_challenge_addr})`,
    );
  // Not a problem document (an HTML error page of a proxy, say): its status, not its page.
  if (problem !== null && problem.type === "" && problem.detail === "")
    return new AcmeError(
      `the ACME order for ${section.host} failed: the ACME server answered HTTP ${problem.status} without an ACME problem document (RFC 8555 §6.7)`,
    );
  return new AcmeError(`the ACME order for ${section.host} failed: ${detail}`);
}

/** Whether `pem` holds a private key Node can use (the account key file must). */
export function isUsablePrivateKey(pem: Buffer): boolean {
  try {
    createPrivateKey(pem);
    return true;
  } catch {
    return false;
  }
}
