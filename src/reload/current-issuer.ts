/**
 * The token issuer requests are answered with, swappable while serving (issue 12 item 1, live
 * reload). A request takes the issuer current when it starts and keeps it to the end, so a reload
 * never changes the rules under a request in flight; the replaced issuer is handed back once its
 * last request has finished, for its pools and timers to be closed then and not before.
 */
import type { TokenIssuer } from "../issue-token.ts";

interface Generation {
  readonly issuer: TokenIssuer;
  inFlight: number;
  /** Set once this generation is replaced; called when its last request finishes. */
  onDrained: (() => void) | null;
}

export class CurrentIssuer {
  #generation: Generation;

  constructor(issuer: TokenIssuer) {
    this.#generation = { issuer, inFlight: 0, onDrained: null };
  }

  /** The issuer a request starting now gets. */
  get issuer(): TokenIssuer {
    return this.#generation.issuer;
  }

  /** Runs one request on the issuer current now; a swap meanwhile lets it finish on this one. */
  async use<T>(run: (issuer: TokenIssuer) => Promise<T>): Promise<T> {
    const generation = this.#generation;
    generation.inFlight++;
    try {
      return await run(generation.issuer);
    } finally {
      generation.inFlight--;
      if (generation.inFlight === 0) generation.onDrained?.();
    }
  }

  /**
   * Makes `next` current at once (one assignment: no request sees a half-built issuer) and
   * resolves with the replaced issuer when the requests that started on it have all finished.
   */
  swap(next: TokenIssuer): Promise<TokenIssuer> {
    const previous = this.#generation;
    this.#generation = { issuer: next, inFlight: 0, onDrained: null };
    return new Promise((resolve) => {
      if (previous.inFlight === 0) resolve(previous.issuer);
      else previous.onDrained = () => resolve(previous.issuer);
    });
  }
}
