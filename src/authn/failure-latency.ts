/**
 * Failed logins all take as long as the slowest recent one. An unknown name is checked against a
 * dummy hash, but back-ends differ: a config user's bcrypt-10 hash costs ~55 ms, a database
 * user's argon2id ~20 ms, an LDAP bind a round trip. Without a floor, the time of a 401 says
 * which back-end (if any) knows the name. Waiting costs no CPU; the cap bounds how long a slow
 * LDAP server can stretch every failure.
 */
export class FailureLatencyFloor {
  private readonly recentMs: number[] = [];
  private next = 0;

  constructor(
    private readonly capMs = 500,
    private readonly window = 64,
    private readonly sleep: (ms: number) => Promise<void> = (ms) => Bun.sleep(ms),
  ) {}

  /** Records a failure that took `elapsedMs`, then waits until it has taken the floor. */
  async equalize(elapsedMs: number): Promise<void> {
    let floorMs = elapsedMs;
    for (const ms of this.recentMs) if (ms > floorMs) floorMs = ms;
    floorMs = Math.min(floorMs, this.capMs);
    this.recentMs[this.next] = elapsedMs;
    this.next = (this.next + 1) % this.window;
    if (floorMs > elapsedMs) await this.sleep(floorMs - elapsedMs);
  }
}
