/**
 * Failed logins all take at least one floor, known at start (review L5). An unknown name is
 * checked against a dummy hash, but back-ends differ: a config user's bcrypt-10 hash costs ~55 ms,
 * a database user's argon2id ~20 ms, an LDAP bind a round trip. Without a floor, the time of a
 * 401 says which back-end (if any) knows the name.
 *
 * The floor used to be "the slowest failure of the last minutes", which leaked once per window:
 * the first failure against a config bcrypt user took 61 ms against 30 ms for everyone else,
 * until the floor rose. Now it is decided before the first failure is answered, from what the
 * config says failures can cost:
 * - hash checks: server.ts hands `calibrate` one check per kind of hash a failure can run (the
 *   dummy hash, one config hash per bcrypt cost or argon2 parameter set). They are timed once,
 *   in the background, right after start: nothing is hashed at module load and start-up does not
 *   wait (issue 9 item 8; Bun.password runs them off the main thread). The dummy's check is its
 *   making (PasswordVerifier.dummyCheck): hashing costs what verifying does, and one argon2id
 *   computation at start instead of two keeps 12 MiB off the start-up peak (issue 12 item 6).
 *   A failure answered before calibration has finished waits for it; that is at most the
 *   slowest hash check, once.
 *   The floor is the slowest check × SAFETY_FACTOR + SAFETY_MARGIN_MS, so load that slows every
 *   hash a little does not reopen the gap.
 * - LDAP: a bind's cost is not known at start, so its timeout is the floor (capped, below).
 * - ext_auth: a program's cost is not known either, and its timeout is seconds; the floor then
 *   also rises to the slowest failure of the last `windowMinutes` (the old rule), for hooks only.
 * Waiting costs no CPU; `capMs` bounds how long any failure is stretched.
 */

/** The floor is this many times the slowest calibrated hash check, plus the margin. */
const SAFETY_FACTOR = 1.2;
const SAFETY_MARGIN_MS = 5;

export interface FailureCostPlan {
  /** Hash checks a failure may run; each is timed once. */
  hashChecks: (() => Promise<unknown>)[];
  /** A floor known without measuring (the LDAP operation timeout), in ms. */
  fixedMs?: number;
  /** Also follow the slowest recent failure (back-ends of unknown cost: ext_auth). */
  adaptive?: boolean;
}

export class FailureLatencyFloor {
  private floorMs = 0;
  private adaptive = false;
  private calibration: Promise<void> = Promise.resolve();
  /** Minute number → the slowest failure seen in that minute (adaptive only). */
  private readonly slowestByMinute = new Map<number, number>();

  constructor(
    private readonly capMs = 500,
    private readonly windowMinutes = 5,
    private readonly sleep: (ms: number) => Promise<void> = (ms) => Bun.sleep(ms),
    private readonly nowMs: () => number = Date.now,
    private readonly clockMs: () => number = () => performance.now(),
  ) {}

  /** Sets the floor from the plan; the hash checks are timed in the background. */
  calibrate(plan: FailureCostPlan): void {
    this.adaptive = plan.adaptive ?? false;
    this.floorMs = Math.max(this.floorMs, plan.fixedMs ?? 0);
    this.calibration = (async () => {
      let slowestMs = 0;
      for (const check of plan.hashChecks) {
        const startedMs = this.clockMs();
        await check().catch(() => undefined);
        slowestMs = Math.max(slowestMs, this.clockMs() - startedMs);
      }
      if (slowestMs > 0) this.floorMs = Math.max(this.floorMs, slowestMs * SAFETY_FACTOR + SAFETY_MARGIN_MS);
    })();
  }

  /** Settles when calibration is done (tests wait for it before counting hash checks). */
  get calibrated(): Promise<void> {
    return this.calibration;
  }

  /** The floor now, in ms (after calibration). */
  get currentFloorMs(): number {
    return Math.min(this.floorMs, this.capMs);
  }

  /** Waits until a failure that has taken `elapsedMs` so far has taken the floor. */
  async equalize(elapsedMs: number): Promise<void> {
    await this.calibration;
    let floorMs = this.floorMs;
    if (this.adaptive) floorMs = Math.max(floorMs, this.slowestRecent(elapsedMs));
    floorMs = Math.min(floorMs, this.capMs);
    if (floorMs > elapsedMs) await this.sleep(floorMs - elapsedMs);
  }

  /** Records this failure and returns the slowest of the window (the pre-L5 rule). */
  private slowestRecent(elapsedMs: number): number {
    const minute = Math.floor(this.nowMs() / 60_000);
    let slowest = elapsedMs;
    for (const [seenMinute, ms] of this.slowestByMinute) {
      if (seenMinute <= minute - this.windowMinutes) this.slowestByMinute.delete(seenMinute);
      else if (ms > slowest) slowest = ms;
    }
    this.slowestByMinute.set(minute, Math.max(this.slowestByMinute.get(minute) ?? 0, elapsedMs));
    return slowest;
  }
}
