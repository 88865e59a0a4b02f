/**
 * Issue 12, item 3: `regauth backup DIR` while the server serves and the CLI writes, and a restore
 * that is one step (the backup directory as the data directory).
 */
import { Database } from "bun:sqlite";
import { describe, expect, it } from "bun:test";
import { mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTempDir } from "../helpers.ts";
import { BINARY, fetchToken, run, startRegauth } from "./harness.ts";

const CONFIG = `server: {addr: "127.0.0.1:{{PORT}}"}\ntoken: {issuer: regauth, services: [registry]}\n`;

describe("regauth backup", () => {
  it("copies the data directory while writes run; a server started on the copy logs users in", async () => {
    const regauth = await startRegauth({ configYaml: CONFIG });
    const cli = (args: string[], stdin?: string) =>
      run([BINARY, ...args, "--data-dir", regauth.dataDir], stdin === undefined ? {} : { stdin });
    expect((await cli(["user", "add", "alice", "--password-stdin"], "alice-password")).exitCode).toBe(0);
    // A token for alice puts an access token key and audit rows in place: more files, more writes.
    expect(
      (await fetchToken(`${regauth.url}/auth`, { service: "registry" }, "alice:alice-password")).status,
    ).toBe(200);

    let writing = true;
    let writes = 0;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        const added = await cli(["user", "add", `writer${i}`, "--password-stdin"], `writer${i}-password`);
        expect(added.exitCode).toBe(0);
        writes++;
      }
    })();
    while (writes < 1) await Bun.sleep(20);

    const backups = makeTempDir("regauth-backup-");
    const results = [];
    for (const name of ["one", "two"]) {
      results.push(await cli(["backup", join(backups, name)]));
      await Bun.sleep(100);
    }
    writing = false;
    await writer;
    for (const result of results) {
      expect(result.stderr).toBe("");
      expect(result.exitCode).toBe(0);
      expect(result.stdout).toContain("integrity_check ok");
    }

    const copy = join(backups, "two");
    expect(statSync(copy).mode & 0o777).toBe(0o700);
    const files = readdirSync(copy).sort();
    // The key set's published bundle and JWKS (src/token/key-set.ts) are copied too, and the
    // secret the registry's notifications carry (src/registry-index/secret.ts).
    expect(files).toEqual([
      "access-token.key",
      "jwks.json",
      "notifications.secret",
      "refresh.key",
      "regauth.db",
      "token-bundle.crt",
      "token.crt",
      "token.key",
    ]);
    for (const file of files) expect(statSync(join(copy, file)).mode & 0o777).toBe(0o600);
    const db = new Database(join(copy, "regauth.db"), { readonly: true });
    expect(db.query("PRAGMA integrity_check").values()).toEqual([["ok"]]);
    const names = (db.query("SELECT name FROM users").values() as [string][]).map((row) => row[0]);
    db.close();
    expect(names).toContain("alice");
    expect(names).toContain("writer0");
    expect(await Bun.file(join(copy, "token.crt")).text()).toBe(
      await Bun.file(join(regauth.dataDir, "token.crt")).text(),
    );

    // Refused: a directory that holds anything; nothing in it is touched.
    const full = join(backups, "full");
    mkdirSync(full);
    writeFileSync(join(full, "keep.txt"), "mine");
    const refused = await cli(["backup", full]);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain("is not empty");
    expect(readdirSync(full)).toEqual(["keep.txt"]);

    // Restore: stop, the backup directory as the data directory, start.
    await regauth.stop();
    const restored = await startRegauth({ configYaml: CONFIG, dataDir: copy });
    expect(restored.stdout.text).not.toContain("created the administrator account");
    const token = await fetchToken(
      `${restored.url}/auth`,
      { service: "registry", scopes: ["repository:alice/app:pull"] },
      "alice:alice-password",
    );
    expect(token.status).toBe(200);
    expect(
      (await fetchToken(`${restored.url}/auth`, { service: "registry" }, "writer0:writer0-password")).status,
    ).toBe(200);
    await restored.stop();
  }, 120_000);

  it("refuses without a directory, and with a data directory that has no database", async () => {
    const dir = makeTempDir("regauth-backup-");
    const usage = await run([BINARY, "backup"]);
    expect(usage.exitCode).toBe(2);
    const empty = join(dir, "data");
    mkdirSync(empty, { mode: 0o700 });
    const missing = await run([BINARY, "backup", join(dir, "copy"), "--data-dir", empty]);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toContain("no accounts database");
    const nowhere = await run([BINARY, "backup", join(dir, "copy"), "--data-dir", join(dir, "nowhere")]);
    expect(nowhere.exitCode).toBe(1);
    expect(nowhere.stderr).toContain("no data directory");
    expect(readdirSync(dir)).toEqual(["data"]);
  });
});
