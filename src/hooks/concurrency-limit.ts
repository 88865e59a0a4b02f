/**
 * A counting semaphore with a bounded, time-limited queue. Hooks spawn one process per call; a
 * burst of token requests (a CI fan-out, a client retry storm) must queue for a few slots instead
 * of forking hundreds of processes, and a queue that cannot drain in time must fail fast rather
 * than hold connections open (security.md §7.3 E6).
 */
export type AcquireResult = "acquired" | "queue-full" | "wait-timeout";

interface Waiter {
  wake: () => void;
  timer: ReturnType<typeof setTimeout>;
}

export class ConcurrencyLimit {
  private running = 0;
  private readonly waiting: Waiter[] = [];

  constructor(
    readonly maxRunning: number,
    readonly maxWaiting: number,
  ) {}

  /** Waits for a slot for at most `maxWaitMs`. Call `release()` exactly once after "acquired". */
  acquire(maxWaitMs: number): Promise<AcquireResult> {
    if (this.running < this.maxRunning) {
      this.running++;
      return Promise.resolve("acquired");
    }
    if (this.waiting.length >= this.maxWaiting) return Promise.resolve("queue-full");
    return new Promise((resolve) => {
      const waiter: Waiter = {
        // release() hands its slot over directly, so `running` is unchanged on wake-up.
        wake: () => {
          clearTimeout(waiter.timer);
          resolve("acquired");
        },
        timer: setTimeout(() => {
          const index = this.waiting.indexOf(waiter);
          if (index >= 0) this.waiting.splice(index, 1);
          resolve("wait-timeout");
        }, maxWaitMs),
      };
      this.waiting.push(waiter);
    });
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) next.wake();
    else this.running--;
  }

  get runningCount(): number {
    return this.running;
  }

  get waitingCount(): number {
    return this.waiting.length;
  }
}
