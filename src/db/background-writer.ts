/**
 * Writes that no response waits for (last-login times today; audit records later), done by a
 * worker thread with its own connection (issue 9, item 2). bun:sqlite is synchronous: a write on
 * the request thread that waits for another process's lock, or for a frozen or failing disk,
 * holds every request. Here the request thread only queues; the worker writes batches, one
 * transaction each, and may wait as long as it must. The queue is bounded: while the worker is
 * stuck, new writes beyond the bound are dropped and counted, never blocking.
 *
 * Writes with the same key coalesce (the last one wins: a user's latest login); give every write
 * its own key (e.g. an audit record's sequence number) to keep them all. A write is one SQL
 * statement with named parameters, so that it can cross to the worker.
 *
 * The worker starts with the first batch, not with the writer: it is a JavaScript VM of its own
 * (~5 MiB resident, issue 12 item 6), which a CLI command that never writes in the background
 * need not pay for.
 */
import type { Database } from "bun:sqlite";
import { log } from "../log.ts";
import { metrics } from "../metrics/recorder.ts";

export interface BackgroundWrite {
  key: string;
  sql: string;
  params: Record<string, string | number | null>;
}

export interface BackgroundWriterOptions {
  /** Most writes held in memory; beyond, new ones are dropped (and counted). */
  maxPending?: number;
  /** How long a write may wait for its batch. */
  flushIntervalMs?: number;
}

interface BatchResult {
  id: number;
  ok: boolean;
  error?: string;
  /** The failure is the store's state (locked, full, failing): keep the batch and retry. */
  retry?: boolean;
}

/**
 * The worker's whole program; it runs from its source text (Function.prototype.toString), so it
 * must not use anything from this module's scope.
 */
function writerThread(): void {
  const { Database } = require("bun:sqlite") as typeof import("bun:sqlite");
  const scope = globalThis as unknown as {
    onmessage: ((event: MessageEvent) => void) | null;
    postMessage(message: unknown): void;
  };
  const postMessage = (message: unknown) => scope.postMessage(message);
  let db: Database | null = null;
  scope.onmessage = (event: MessageEvent) => {
    const message = event.data as
      | { kind: "open"; path: string; busyTimeoutMs: number }
      | { kind: "batch"; id: number; writes: BackgroundWrite[] }
      | { kind: "close" };
    if (message.kind === "open") {
      db = new Database(message.path, { strict: true });
      db.run(`PRAGMA busy_timeout = ${Math.trunc(message.busyTimeoutMs)}`);
      db.run("PRAGMA foreign_keys = ON");
      return;
    }
    if (message.kind === "close") {
      db?.close();
      db = null;
      postMessage({ id: -1, ok: true });
      return;
    }
    const handle = db;
    if (!handle) return postMessage({ id: message.id, ok: false, retry: true, error: "not open" });
    try {
      handle
        .transaction(() => {
          for (const write of message.writes) handle.query(write.sql).run(write.params);
        })
        .immediate();
      postMessage({ id: message.id, ok: true });
    } catch (error) {
      const code = String((error as { code?: unknown }).code ?? "");
      const retry = /^SQLITE_(BUSY|LOCKED|FULL|IOERR|READONLY|CANTOPEN)/.test(code);
      postMessage({ id: message.id, ok: false, retry, error: (error as Error).message });
    }
  };
}

/** The worker's connection waits this long for another process's lock; it holds no request. */
const WORKER_BUSY_TIMEOUT_MS = 5000;

export class BackgroundWriter {
  readonly #databasePath: string;
  /** Started by the first batch: a worker is a JavaScript VM of its own, ~5 MiB resident (issue 12 item 6). */
  #worker: Worker | null = null;
  readonly #pending = new Map<string, BackgroundWrite>();
  readonly #maxPending: number;
  readonly #flushIntervalMs: number;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #inFlight: { id: number; writes: BackgroundWrite[]; done: Promise<boolean> } | null = null;
  #nextId = 1;
  #lastDropReportMs = 0;
  #closed = false;
  /** Counters for the log and for tests. */
  readonly stats = { written: 0, dropped: 0, retriedBatches: 0, failedBatches: 0 };

  constructor(databasePath: string, options: BackgroundWriterOptions = {}) {
    this.#maxPending = options.maxPending ?? 10_000;
    this.#flushIntervalMs = options.flushIntervalMs ?? 1000;
    this.#databasePath = databasePath;
  }

  /** Whether the worker thread runs (it starts with the first batch). */
  get threadStarted(): boolean {
    return this.#worker !== null;
  }

  #thread(): Worker {
    if (this.#worker) return this.#worker;
    // `bun build` rewrites require() in writerThread to its bundle helper __require, which the
    // worker's scope lacks: without this alias the compiled binary's worker threw at start and
    // wrote nothing (found by test/e2e/access-tokens.e2e.test.ts: last use never recorded).
    const source = `var __require = typeof require === "function" ? require : undefined;\n(${writerThread.toString()})();`;
    const worker = new Worker(URL.createObjectURL(new Blob([source], { type: "application/javascript" })));
    worker.unref(); // never keeps a CLI or a test process alive
    worker.postMessage({ kind: "open", path: this.#databasePath, busyTimeoutMs: WORKER_BUSY_TIMEOUT_MS });
    this.#worker = worker;
    return worker;
  }

  /** Queued writes, the batch in flight included. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Queues a write; false when the queue is full and the write was dropped. */
  enqueue(write: BackgroundWrite): boolean {
    if (this.#closed) return false;
    if (!this.#pending.has(write.key) && this.#pending.size >= this.#maxPending) {
      this.stats.dropped++;
      metrics.backgroundWritesDropped(1);
      this.#reportDrops();
      return false;
    }
    this.#pending.delete(write.key); // re-insert: the newest value, in arrival order
    this.#pending.set(write.key, write);
    this.#schedule();
    return true;
  }

  /**
   * Hands what is queued to the worker unless a batch is still in flight (then waits for that
   * one); resolves true when the batch was written. Never blocks the calling thread.
   */
  flush(): Promise<boolean> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#inFlight) return this.#inFlight.done;
    if (this.#pending.size === 0) return Promise.resolve(true);
    const worker = this.#thread();
    const id = this.#nextId++;
    const writes = [...this.#pending.values()];
    const done = new Promise<boolean>((resolve) => {
      const onMessage = (event: MessageEvent) => {
        const result = event.data as BatchResult;
        if (result.id !== id) return;
        worker.removeEventListener("message", onMessage);
        this.#inFlight = null;
        if (result.ok) {
          for (const write of writes)
            if (this.#pending.get(write.key) === write) this.#pending.delete(write.key);
          this.stats.written += writes.length;
        } else if (result.retry) {
          this.stats.retriedBatches++;
          log.debug("background writes postponed", { pending: this.#pending.size, error: result.error });
        } else {
          // A write that can never succeed (a bug): drop the batch rather than retry forever.
          this.stats.failedBatches++;
          for (const write of writes)
            if (this.#pending.get(write.key) === write) this.#pending.delete(write.key);
          log.warn("background writes failed and were dropped", {
            writes: writes.length,
            error: result.error,
          });
        }
        this.#schedule();
        resolve(result.ok);
      };
      worker.addEventListener("message", onMessage);
    });
    this.#inFlight = { id, writes, done };
    worker.postMessage({ kind: "batch", id, writes });
    return done;
  }

  /** At shutdown: one last batch, waiting at most `timeoutMs` (a frozen disk must not hang the exit). */
  async close(timeoutMs = 2000): Promise<void> {
    if (this.#closed) return;
    await Promise.race([this.flush(), Bun.sleep(timeoutMs)]);
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    const worker = this.#worker;
    if (!worker) return;
    // The worker's connection is closed before the thread ends: SQLite removes the -wal and -shm
    // only when the last connection closes, and a terminated thread never closes its own, so a
    // clean stop left regauth.db-wal behind (found by test/e2e/data-dir-links.e2e.test.ts).
    const closed = new Promise<void>((resolve) => {
      const onMessage = (event: MessageEvent) => {
        if ((event.data as BatchResult).id !== -1) return;
        worker.removeEventListener("message", onMessage);
        resolve();
      };
      worker.addEventListener("message", onMessage);
    });
    worker.postMessage({ kind: "close" });
    await Promise.race([closed, Bun.sleep(timeoutMs)]);
    worker.terminate();
  }

  #schedule(): void {
    if (this.#closed || this.#timer || this.#inFlight || this.#pending.size === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.flush();
    }, this.#flushIntervalMs);
    this.#timer.unref?.();
  }

  #reportDrops(): void {
    const now = Date.now();
    if (now - this.#lastDropReportMs < 60_000) return;
    this.#lastDropReportMs = now;
    log.warn("background write queue full; writes dropped", {
      dropped_total: this.stats.dropped,
      pending: this.#pending.size,
    });
  }
}

const writers = new WeakMap<Database, BackgroundWriter>();

/** The one writer of a database handle's file, shared by everything that writes in the background. */
export function backgroundWriterFor(db: Database): BackgroundWriter {
  let writer = writers.get(db);
  if (!writer) {
    writer = new BackgroundWriter(db.filename);
    writers.set(db, writer);
  }
  return writer;
}
