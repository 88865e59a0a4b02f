/**
 * When a failed delivery is tried again: exponential backoff with full jitter (AWS Architecture
 * Blog, "Exponential Backoff And Jitter"): a random wait from 0 to min(max, base * 2^(n-1)) after
 * the n-th failed attempt, so the retries of many webhooks that failed together spread out.
 */
export const MIN_WAIT_MS = 100;

export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
}

/** The wait after failed attempt number `attempt` (1 = the first); `random` in [0, 1). */
export function backoffMs(
  attempt: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), 30);
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** exponent);
  // A floor of 100 ms: a receiver that fails at once is not hammered in a tight loop.
  return Math.max(Math.min(MIN_WAIT_MS, ceiling), Math.floor(random() * ceiling));
}
