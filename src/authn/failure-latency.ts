/**
 * Failed logins all take as long as the slowest one of the last few minutes. An unknown name is
 * checked against a dummy hash, but back-ends differ: a config user's bcrypt-10 hash costs ~55 ms,
 * a database user's argon2id ~20 ms, an LDAP bind a round trip. Without a floor, the time of a
 * 401 says which back-end (if any) knows the name. The window is time, not a count of failures,
 * so a burst of fast failures cannot flush the slow one out. Waiting costs no CPU; the cap bounds
 * how long a slow LDAP server can stretch every failure.
 */
export class FailureLatencyFloor {
  /** Minute number → the slowest failure seen in that minute. At most `windowMinutes` entries. */
  private readonly slowestByMinute = new Map<number, number>();

  constructor(
    private readonly capMs = 500,
    private readonly windowMinutes = 5,
    private readonly sleep: (ms: number) => Promise<void> = (ms) => Bun.sleep(ms),
    private readonly nowMs: () => number = Date.now,
  ) {}

  /** Records a failure that took `elapsedMs`, then waits until it has taken the floor. */
  async equalize(elapsedMs: number): Promise<void> {
    const minute = Math.floor(this.nowMs() / 60_000);
    let floorMs = elapsedMs;
    for (const [seenMinute, ms] of this.slowestByMinute) {
      if (seenMinute <= minute - this.windowMinutes) this.slowestByMinute.delete(seenMinute);
      else if (ms > floorMs) floorMs = ms;
    }
    this.slowestByMinute.set(minute, Math.max(this.slowestByMinute.get(minute) ?? 0, elapsedMs));
    floorMs = Math.min(floorMs, this.capMs);
    if (floorMs > elapsedMs) await this.sleep(floorMs - elapsedMs);
  }
}
