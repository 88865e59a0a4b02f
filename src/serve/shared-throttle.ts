/**
 * The login throttle shared by every worker (issue 17 item 3): the supervisor's LoginThrottle
 * decides, each worker asks it over Bun's IPC channel. N workers must not give an attacker N
 * budgets, nor N registration budgets. Only the password path asks: anonymous requests never reach
 * the throttle, and a credential that logged in from this address recently is admitted by the
 * worker's own memory of it, as the supervisor's would (the request that logged in told both).
 * The supervisor answers in order, admit and charge in one synchronous step, so parallel guesses
 * on two workers cannot both pass one check; an attempt a worker never settles (it died) is
 * refunded as unanswered, as a request that ended in an error is.
 */
import type { ClientIp } from "../acl.ts";
import { type Admission, LoginAttempt, type LoginThrottle, type Throttle } from "../authn/throttle.ts";
import { ServerBusy } from "../errors.ts";

/** Worker → supervisor. `id` pairs a question with its answer, or an attempt with its settlement. */
export type ThrottleRequest =
  | { t: "admit"; id: number; ip: WireIp | null; account: string; secret: string }
  | { t: "settle"; id: number; outcome: "succeeded" | "failed" | "unanswered" }
  | { t: "refusal"; ip: WireIp | null; account: string }
  | { t: "remember-success"; ip: WireIp | null; account: string; secret: string }
  | { t: "charge-address"; ip: WireIp | null }
  | { t: "reserve-registration"; id: number; ip: WireIp | null }
  | { t: "release-registration"; ip: WireIp | null };

/** Supervisor → worker. */
export type ThrottleAnswer =
  | { t: "admission"; id: number; admitted: true; isKnownGood: boolean }
  | { t: "admission"; id: number; admitted: false; retryAfterSeconds: number }
  | { t: "registration"; id: number; waitSeconds: number };

/** ClientIp over JSON: the bytes as an array. */
interface WireIp {
  text: string;
  bytes: number[];
}

const toWire = (ip: ClientIp | null): WireIp | null => (ip ? { text: ip.text, bytes: [...ip.bytes] } : null);
/** A worker's address as sent; anything else (a hostile or broken worker) is no address. */
const fromWire = (ip: WireIp | null): ClientIp | null =>
  ip &&
  typeof ip.text === "string" &&
  Array.isArray(ip.bytes) &&
  (ip.bytes.length === 4 || ip.bytes.length === 16)
    ? { text: ip.text, bytes: Uint8Array.from(ip.bytes, (b) => Number(b) & 0xff) }
    : null;

/** A supervisor that does not answer in this long is gone or stuck: the request is answered 503. */
const ANSWER_TIMEOUT_MS = 10_000;

/** A string field as sent, or "" (String() of a hostile object may throw). */
const text = (value: unknown): string => (typeof value === "string" ? value : "");

/** The request kinds a worker sends; anything else is dropped unread. */
const REQUEST_KINDS = new Set([
  "admit",
  "settle",
  "refusal",
  "remember-success",
  "charge-address",
  "reserve-registration",
  "release-registration",
]);

/** A worker's Throttle: its own memory of recent successes, the supervisor's budgets for the rest. */
export class SharedThrottle implements Throttle {
  private nextId = 1;
  private readonly waiting = new Map<number, (answer: ThrottleAnswer | null) => void>();

  constructor(
    private readonly send: (message: ThrottleRequest) => void,
    /** Remembers this worker's successes only (its budgets are never charged). */
    private readonly local: LoginThrottle,
    private readonly answerTimeoutMs = ANSWER_TIMEOUT_MS,
  ) {}

  /** An answer from the supervisor (the worker's IPC message handler calls this). */
  answered(answer: ThrottleAnswer): void {
    this.waiting.get(answer.id)?.(answer);
  }

  async admit(ip: ClientIp | null, account: string, secret: string): Promise<Admission> {
    const free = this.local.admitKnownGood(ip, account, secret);
    if (free?.kind === "admitted")
      return {
        kind: "admitted",
        attempt: new LoginAttempt(true, {
          // Renewed here and in the supervisor, as one process renews it at every success: else
          // the exemption lapsed successExemptionSeconds after the first login, and a credential
          // used every day was charged as a guess against a budget an attacker may have spent.
          succeeded: () => {
            this.local.rememberSucceeded(ip, account, secret);
            this.send({ t: "remember-success", ip: toWire(ip), account, secret });
          },
          unanswered: () => {},
          ended: () => {},
        }),
      };
    const id = this.nextId++;
    const answer = await this.ask(id, { t: "admit", id, ip: toWire(ip), account, secret });
    if (answer?.t !== "admission") {
      // Given up on (the request is answered 503, its password never checked): should the
      // supervisor admit it after all, this comes after the admit (IPC keeps the order) and
      // refunds it, instead of leaving it open, and the credential "in flight", for as long as
      // this worker lives.
      this.send({ t: "settle", id, outcome: "unanswered" });
      throw new ServerBusy("the login throttle did not answer", 1);
    }
    if (!answer.admitted) return { kind: "refused", retryAfterSeconds: answer.retryAfterSeconds };
    const settle = (outcome: "succeeded" | "failed" | "unanswered") =>
      this.send({ t: "settle", id, outcome });
    return {
      kind: "admitted",
      attempt: new LoginAttempt(answer.isKnownGood, {
        succeeded: () => {
          this.local.rememberSucceeded(ip, account, secret);
          settle("succeeded");
        },
        failed: () => settle("failed"),
        unanswered: () => settle("unanswered"),
        ended: () => {},
      }),
    };
  }

  reportRefusal(ip: ClientIp | null, account: string): void {
    this.send({ t: "refusal", ip: toWire(ip), account });
  }

  chargeAddress(ip: ClientIp | null): void {
    this.send({ t: "charge-address", ip: toWire(ip) });
  }

  async reserveRegistration(ip: ClientIp | null): Promise<number> {
    const id = this.nextId++;
    const answer = await this.ask(id, { t: "reserve-registration", id, ip: toWire(ip) });
    if (answer?.t !== "registration") throw new ServerBusy("the login throttle did not answer", 1);
    return answer.waitSeconds;
  }

  releaseRegistration(ip: ClientIp | null): void {
    this.send({ t: "release-registration", ip: toWire(ip) });
  }

  private ask(id: number, message: ThrottleRequest): Promise<ThrottleAnswer | null> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(null), this.answerTimeoutMs);
      const done = (answer: ThrottleAnswer | null) => {
        clearTimeout(timer);
        this.waiting.delete(id);
        resolve(answer);
      };
      this.waiting.set(id, done);
      try {
        this.send(message);
      } catch {
        done(null);
      }
    });
  }
}

/**
 * The supervisor's side: answers one worker's questions from `throttle()` (the issuer serving now,
 * whose throttle a reload keeps). `forget` refunds what the worker left unsettled when it died.
 */
export function throttleService(
  throttle: () => Throttle | undefined,
  reply: (answer: ThrottleAnswer) => void,
): { handle(message: ThrottleRequest): void; forget(): void; readonly openAttempts: number } {
  const open = new Map<number, LoginAttempt>();
  return {
    get openAttempts() {
      return open.size;
    },
    handle(message) {
      // A worker is this executable, but its messages are still input: a malformed one (null, an
      // unknown kind, an address that is not one) must not throw in the supervisor.
      if (typeof message !== "object" || message === null || !REQUEST_KINDS.has(message.t)) return;
      if ("id" in message && !Number.isSafeInteger(message.id)) return;
      const current = throttle();
      switch (message.t) {
        case "admit": {
          const admission = current?.admit(fromWire(message.ip), text(message.account), text(message.secret));
          // The supervisor's own throttle is a LoginThrottle: synchronous, so never a promise here.
          if (admission === undefined || admission instanceof Promise) {
            reply({ t: "admission", id: message.id, admitted: true, isKnownGood: false });
            return;
          }
          if (admission.kind === "refused") {
            reply({
              t: "admission",
              id: message.id,
              admitted: false,
              retryAfterSeconds: admission.retryAfterSeconds,
            });
            return;
          }
          open.set(message.id, admission.attempt);
          reply({
            t: "admission",
            id: message.id,
            admitted: true,
            isKnownGood: admission.attempt.isKnownGood,
          });
          return;
        }
        case "settle": {
          const attempt = open.get(message.id);
          open.delete(message.id);
          if (message.outcome === "succeeded") attempt?.succeeded();
          else if (message.outcome === "failed") attempt?.failed();
          else attempt?.[Symbol.dispose]();
          return;
        }
        case "refusal":
          current?.reportRefusal(fromWire(message.ip), text(message.account));
          return;
        case "remember-success":
          current?.rememberSucceeded?.(fromWire(message.ip), text(message.account), text(message.secret));
          return;
        case "charge-address":
          current?.chargeAddress(fromWire(message.ip));
          return;
        case "reserve-registration": {
          const wait = current?.reserveRegistration(fromWire(message.ip)) ?? 0;
          reply({ t: "registration", id: message.id, waitSeconds: typeof wait === "number" ? wait : 0 });
          return;
        }
        case "release-registration":
          current?.releaseRegistration(fromWire(message.ip));
          return;
      }
    },
    forget() {
      for (const attempt of open.values()) attempt[Symbol.dispose]();
      open.clear();
    },
  };
}
