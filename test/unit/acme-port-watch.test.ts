/** src/acme/port-watch.ts: another process on the port by SO_REUSEPORT is found; our own sockets are not. */
import { describe, expect, it } from "bun:test";
import { foreignListeners, ownersOf, watchForeignListeners } from "../../src/acme/port-watch.ts";

describe.skipIf(process.platform !== "linux")("foreignListeners", () => {
  it("names a process that is not our child, with its command line", async () => {
    const ours = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      reusePort: true,
      fetch: () => new Response("ours"),
    });
    const port = ours.port as number;
    // Started through a shell that exits at once: reparented, no longer our child.
    const script = `Bun.serve({hostname: "127.0.0.1", port: ${port}, reusePort: true, fetch: () => new Response("x")}); await Bun.sleep(20000);`;
    const started = Bun.spawnSync([
      "sh",
      "-c",
      `"$0" -e "$1" >/dev/null 2>&1 & echo $!`,
      process.execPath,
      script,
    ]);
    const pid = Number(started.stdout.toString().trim());
    try {
      let foreign: string[] = [];
      for (let i = 0; i < 100 && foreign.length === 0; i++) {
        await Bun.sleep(50);
        foreign = foreignListeners(port);
      }
      const owners = ownersOf(foreign);
      expect(owners.map((o) => [o.pid, o.family])).toEqual([[pid, false]]);
      expect(owners[0]?.command).toContain("reusePort: true");
    } finally {
      process.kill(pid, "SIGKILL");
      ours.stop(true);
    }
  });

  it("finds another process that joined the port with SO_REUSEPORT, and not ours", async () => {
    const ours = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      reusePort: true,
      fetch: () => new Response("ours"),
    });
    const port = ours.port as number;
    try {
      expect(foreignListeners(port)).toEqual([]);
      const other = Bun.spawn(
        [
          process.execPath,
          "-e",
          `Bun.serve({hostname: "127.0.0.1", port: ${port}, reusePort: true, fetch: () => new Response("other")}); console.log("up"); await Bun.sleep(20000);`,
        ],
        { stdout: "pipe", stderr: "inherit" },
      );
      try {
        const reader = other.stdout.getReader();
        await reader.read(); // "up"
        const reports: string[][] = [];
        const stop = watchForeignListeners(port, (inodes) => reports.push(inodes), 50);
        await Bun.sleep(200);
        stop();
        expect(foreignListeners(port)).toHaveLength(1);
        expect(reports).toHaveLength(1); // once, not every check
        // Our own child: sharing by design (several serving processes), not named.
        expect(ownersOf(reports[0] as string[]).map((o) => [o.pid, o.family])).toEqual([[other.pid, true]]);
      } finally {
        other.kill();
        await other.exited;
      }
      expect(foreignListeners(port)).toEqual([]);
    } finally {
      ours.stop(true);
    }
  });
});
