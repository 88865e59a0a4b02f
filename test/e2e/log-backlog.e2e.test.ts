/**
 * A stderr nobody reads (a stalled journald, `serve 2>&1 | less` left paused): the server keeps
 * answering, holds at most LOG_BACKLOG_LIMIT_BYTES of log output waiting, drops the rest, and once
 * the reader catches up says how many lines it dropped (src/log.ts, LogBacklog).
 */
import { describe, expect, it } from "bun:test";
import { closeSync, constants, openSync, readSync } from "node:fs";
import { join } from "node:path";
import { LOG_BACKLOG_LIMIT_BYTES } from "../../src/log.ts";
import { makeTempDir } from "../helpers.ts";
import { ensureBinary, freePort, waitForHttp } from "./harness.ts";

const TOKENS = 20_000;

describe("log output nobody reads", () => {
  it("is bounded: the server answers every request, and the dropped lines are counted", async () => {
    const dir = makeTempDir("regauth-log-backlog-");
    const fifo = join(dir, "stderr.fifo");
    expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
    // Read and write ends in one descriptor: the child writes into it, the test reads when it says.
    const fd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
    const port = await freePort();
    const configPath = join(dir, "config.yml");
    await Bun.write(
      configPath,
      `server: {addr: "127.0.0.1:${port}", workers: 1}\ntoken: {issuer: regauth, expiration: 300}\nusers: {"": {}}\nacl: [{match: {account: ""}, actions: [pull]}]\n`,
    );
    const proc = Bun.spawn(
      [ensureBinary(), "serve", "--config", configPath, "--data-dir", join(dir, "data")],
      {
        cwd: dir,
        stdin: "ignore",
        stdout: "ignore",
        stderr: fd,
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir },
      },
    );
    try {
      const url = `http://127.0.0.1:${port}`;
      await waitForHttp(`${url}/healthz`, 15_000);
      const tokenUrl = `${url}/auth?service=registry&scope=repository:library/alpine:pull`;
      let ok = 0;
      for (let sent = 0; sent < TOKENS; sent += 100)
        ok += (
          await Promise.all(
            Array.from({ length: 100 }, () =>
              fetch(tokenUrl).then(async (r) => (await r.arrayBuffer(), r.ok)),
            ),
          )
        ).filter(Boolean).length;
      expect(ok).toBe(TOKENS);

      // Now the reader catches up.
      let text = "";
      let readBytes = 0;
      const chunk = Buffer.alloc(65_536);
      const readUntil = async (isDone: () => boolean, timeoutMs: number) => {
        const deadline = Date.now() + timeoutMs;
        while (!isDone() && Date.now() < deadline) {
          let n = 0;
          try {
            n = readSync(fd, chunk);
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code !== "EAGAIN") throw error;
          }
          if (n === 0) await Bun.sleep(20);
          readBytes += n;
          text += chunk.subarray(0, n).toString("utf8");
        }
      };
      const notice = /msg="log lines dropped: stderr was not read fast enough" dropped_lines=(\d+)/;
      await readUntil(() => notice.test(text), 15_000);
      const dropped = Number(text.match(notice)?.[1]);
      const issuedLines = text.match(/msg="token issued"/g)?.length ?? 0;
      expect(dropped).toBeGreaterThan(0);
      // Every line is either there or counted.
      expect(issuedLines + dropped).toBeGreaterThanOrEqual(TOKENS);
      // What waited: the backlog, the pipe's own 64 KiB and the start-up lines.
      expect(readBytes).toBeLessThan(LOG_BACKLOG_LIMIT_BYTES + 512 * 1024);

      // Lines flow again after the notice.
      expect((await fetch(tokenUrl)).status).toBe(200);
      const afterNotice = () => text.slice(text.search(notice));
      await readUntil(() => afterNotice().includes('msg="token issued"'), 5_000);
      expect(afterNotice()).toContain('msg="token issued"');
    } finally {
      proc.kill("SIGTERM");
      // Drain so the child can log its way out.
      const end = Date.now() + 10_000;
      const chunk = Buffer.alloc(65_536);
      while (proc.exitCode === null && Date.now() < end) {
        try {
          readSync(fd, chunk);
        } catch {}
        await Bun.sleep(20);
      }
      await proc.exited;
      closeSync(fd);
    }
  }, 90_000);
});
