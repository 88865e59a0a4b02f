/**
 * serve's periodic sync (issue 11 item 2, src/registry-index/sync.ts): the first run shortly after
 * start, then every interval; never two at once; a failure is logged and retried at the next
 * interval; stop ends it and aborts a run in flight. IndexSync joins a run asked for while one goes.
 */
import { describe, expect, it } from "bun:test";
import { log } from "../../src/log.ts";
import { CrawlFailed } from "../../src/registry-index/crawler.ts";
import { IndexSync, type SyncReport, startPeriodicSync } from "../../src/registry-index/sync.ts";
import { tempDatabase } from "../accounts-helpers.ts";

const REPORT: SyncReport = {
  added: 0,
  moved: 0,
  deletedTags: 0,
  deletedRepositories: 0,
  changes: 0,
  repositories: 0,
  tags: 0,
  incompleteRepositories: [],
  durationMs: 1,
};

/** An IndexSync whose runs take `runMs` and fail while `failing` is set. */
function fakeSync(runMs: number) {
  const state = { runs: 0, concurrent: 0, maxConcurrent: 0, failing: false, stopped: false };
  let running: Promise<SyncReport> | null = null;
  const sync = {
    settings: { registryUrl: "http://registry.test" },
    get isRunning() {
      return running !== null;
    },
    run() {
      running ??= (async () => {
        state.runs++;
        state.concurrent++;
        state.maxConcurrent = Math.max(state.maxConcurrent, state.concurrent);
        await Bun.sleep(runMs);
        state.concurrent--;
        running = null;
        if (state.failing)
          throw new CrawlFailed("cannot reach the registry at http://registry.test/: refused");
        return REPORT;
      })();
      return running;
    },
    async stop() {
      state.stopped = true;
    },
  };
  return { sync: sync as unknown as IndexSync, state };
}

async function until(condition: () => boolean, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await Bun.sleep(10);
  }
}

describe("startPeriodicSync", () => {
  it("runs first after the short delay, then every interval, logs and retries a failure, and stops", async () => {
    const lines: string[] = [];
    const restore = log.capture(lines);
    try {
      const { sync, state } = fakeSync(20);
      state.failing = true;
      const stop = startPeriodicSync(sync, 1, 10);
      await until(() => state.runs === 1);
      await until(() => lines.some((l) => l.includes("registry sync failed; retrying at the next interval")));
      state.failing = false;
      await until(() => state.runs === 2, 3000);
      await until(() => lines.some((l) => l.includes('msg="registry sync"')));
      await stop();
      expect(state.stopped).toBe(true);
      const runsAtStop = state.runs;
      await Bun.sleep(1200);
      expect(state.runs).toBe(runsAtStop);
      expect(state.maxConcurrent).toBe(1);
    } finally {
      restore();
    }
  });

  it("never starts a second run while one is still going", async () => {
    const { sync, state } = fakeSync(1500);
    const stop = startPeriodicSync(sync, 1, 10);
    await until(() => state.runs === 1);
    await Bun.sleep(1300); // the next interval comes while the first run goes on
    expect(state.maxConcurrent).toBe(1);
    await stop();
  });
});

describe("IndexSync", () => {
  it("joins a run asked for while one goes, and refuses runs after stop", async () => {
    const { db } = tempDatabase();
    let fetches = 0;
    const sync = new IndexSync(db, {
      // Nothing listens there: each run fails fast, which is enough to see the joining.
      registryUrl: "http://127.0.0.1:9",
      issuer: "regauth",
      service: "registry",
      signingKey: () => {
        fetches++;
        throw new Error("not reached: the catalog request is signed only once per run");
      },
    });
    const first = sync.run({ actor: "a", ip: "" });
    const second = sync.run({ actor: "b", ip: "" });
    expect(second).toBe(first);
    await first.catch(() => {});
    expect(fetches).toBe(1);
    await sync.stop();
    expect(await sync.run({ actor: "c", ip: "" }).catch((e: Error) => e.message)).toBe(
      "the server is shutting down",
    );
  });
});
