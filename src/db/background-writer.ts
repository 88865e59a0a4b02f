/**
 * Writes that no response waits for (last-login times today; audit records later): queued in
 * memory and written in batches, one transaction each, off the request (issue 9, item 2).
 * bun:sqlite is synchronous, so a write that waits for another process's lock blocks every
 * request: the batch never waits (busy_timeout 0) and is retried on the next tick instead. The
 * queue is bounded; when it is full, new writes are dropped and counted, never blocking.
 *
 * Writes with the same key coalesce (the last one wins: a user's latest login); give every
 * write its own key (e.g. an audit record's sequence number) to keep them all.
 */
import type { Database } from "bun:sqlite";
import { log } from "../log.ts";
import { storeFault } from "./store-errors.ts";

export interface BackgroundWrite {
  key: string;
  apply(db: Database): void;
}

export interface BackgroundWriterOptions {
  /** Most writes held in memory; beyond, new ones are dropped (and counted). */
  maxPending?: number;
  /** How long a write may wait for its batch. */
  flushIntervalMs?: number;
}

export class BackgroundWriter {
  readonly #db: Database;
  readonly #pending = new Map<string, BackgroundWrite>();
  readonly #maxPending: number;
  readonly #flushIntervalMs: number;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #lastReportMs = 0;
  /** Counters for the log and for tests. */
  readonly stats = { written: 0, dropped: 0, retriedBatches: 0, failedBatches: 0 };

  constructor(db: Database, options: BackgroundWriterOptions = {}) {
    this.#db = db;
    this.#maxPending = options.maxPending ?? 10_000;
    this.#flushIntervalMs = options.flushIntervalMs ?? 1000;
  }

  get pending(): number {
    return this.#pending.size;
  }

  /** Queues a write; false when the queue is full and the write was dropped. */
  enqueue(write: BackgroundWrite): boolean {
    if (!this.#pending.has(write.key) && this.#pending.size >= this.#maxPending) {
      this.stats.dropped++;
      this.#reportDrops();
      return false;
    }
    this.#pending.delete(write.key); // re-insert: the newest value, in arrival order
    this.#pending.set(write.key, write);
    this.#schedule();
    return true;
  }

  /** Writes what is queued now, without waiting for a lock; true when the queue is empty after. */
  flush(): boolean {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#pending.size === 0) return true;
    const batch = [...this.#pending.values()];
    const previousTimeout =
      this.#db.query<{ timeout: number }, []>("PRAGMA busy_timeout").get()?.timeout ?? 0;
    try {
      this.#db.run("PRAGMA busy_timeout = 0");
      this.#db
        .transaction(() => {
          for (const write of batch) write.apply(this.#db);
        })
        .immediate();
      for (const write of batch) if (this.#pending.get(write.key) === write) this.#pending.delete(write.key);
      this.stats.written += batch.length;
      return this.#pending.size === 0;
    } catch (error) {
      if (storeFault(error) !== null) {
        // Locked, full or failing: keep the batch (bounded) and try again on the next tick.
        this.stats.retriedBatches++;
        log.debug("background writes postponed", {
          pending: this.#pending.size,
          error: (error as Error).message,
        });
      } else {
        // A write that can never succeed (a bug, a deleted row's constraint): drop the batch.
        this.stats.failedBatches++;
        for (const write of batch) this.#pending.delete(write.key);
        log.warn("background writes failed and were dropped", {
          writes: batch.length,
          error: (error as Error).message,
        });
      }
      this.#schedule();
      return false;
    } finally {
      this.#db.run(`PRAGMA busy_timeout = ${Math.trunc(previousTimeout)}`);
    }
  }

  /** Stops the timer after one last attempt (at shutdown). */
  close(): void {
    this.flush();
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #schedule(): void {
    if (this.#timer || this.#pending.size === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.flush();
    }, this.#flushIntervalMs);
    this.#timer.unref?.();
  }

  #reportDrops(): void {
    const now = Date.now();
    if (now - this.#lastReportMs < 60_000) return;
    this.#lastReportMs = now;
    log.warn("background write queue full; writes dropped", {
      dropped_total: this.stats.dropped,
      pending: this.#pending.size,
    });
  }
}

const writers = new WeakMap<Database, BackgroundWriter>();

/** The one writer of a database handle, shared by everything that writes in the background. */
export function backgroundWriterFor(db: Database): BackgroundWriter {
  let writer = writers.get(db);
  if (!writer) {
    writer = new BackgroundWriter(db);
    writers.set(db, writer);
  }
  return writer;
}
