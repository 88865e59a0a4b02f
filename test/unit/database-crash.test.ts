import { Database } from "bun:sqlite";
import { describe, expect, it } from "bun:test";
import { join } from "node:path";
import { databasePath } from "../../src/db/database.ts";
import { makeTempDir } from "../helpers.ts";

describe("kill -9 during writes", () => {
  it("leaves a database that passes integrity_check and holds every acknowledged change", async () => {
    const path = databasePath(makeTempDir());
    const writer = Bun.spawn(["bun", join(import.meta.dir, "../fixtures/account-writer.ts"), path], {
      stdout: "pipe",
      stderr: "inherit",
    });
    let acknowledged = -1;
    let buffered = "";
    const decoder = new TextDecoder();
    for await (const chunk of writer.stdout) {
      buffered += decoder.decode(chunk, { stream: true });
      const lines = buffered.split("\n");
      buffered = lines.pop() ?? "";
      for (const line of lines) acknowledged = Number(line);
      if (acknowledged >= 300) break;
    }
    writer.kill("SIGKILL");
    await writer.exited;
    expect(writer.signalCode).toBe("SIGKILL");
    expect(acknowledged).toBeGreaterThanOrEqual(300);

    const db = new Database(path, { strict: true });
    expect(db.query("PRAGMA integrity_check").get()).toEqual({ integrity_check: "ok" });
    expect(db.query("PRAGMA foreign_key_check").all()).toEqual([]);
    const users = db.query<{ n: number }, []>("SELECT count(*) AS n FROM users").get()?.n ?? 0;
    const grants = db.query<{ n: number }, []>("SELECT count(*) AS n FROM permissions").get()?.n ?? 0;
    // Every acknowledged transaction is there, and whole: each user with its grant (the writer
    // kept going between our last read and the kill, so there may be more than we counted).
    expect(users).toBeGreaterThanOrEqual(acknowledged + 1);
    expect(grants).toBe(users);
    const missing = db
      .query<{ n: number }, [number]>(
        `WITH RECURSIVE i(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM i WHERE n < ?)
         SELECT count(*) AS n FROM i WHERE NOT EXISTS (SELECT 1 FROM users WHERE name = 'user-' || i.n)`,
      )
      .get(acknowledged);
    expect(missing).toEqual({ n: 0 });
  });
});
