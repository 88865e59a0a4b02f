/**
 * Who else listens on the ACME listener's port (issue 16 review). With SO_REUSEPORT on (for the
 * certificate swap), the kernel lets any process of the same user that sets it too join the port
 * and take part of the new connections: src/acme/port-lock.ts keeps out another regauth, but not
 * an older regauth or another Bun/Elysia program (Elysia sets SO_REUSEPORT by default). Nothing
 * refuses those; this finds them so the log can say so. Linux: /proc/net/tcp{,6}, /proc/self/fd.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

const LISTEN = "0A";

/** Inodes of the TCP sockets listening on `port` in this network namespace, any address. */
export function listeningInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  const portHex = port.toString(16).toUpperCase().padStart(4, "0");
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue; // no IPv6, or no /proc
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10 || fields[3] !== LISTEN) continue;
      if (fields[1]?.endsWith(`:${portHex}`)) inodes.add(fields[9] as string);
    }
  }
  return inodes;
}

/** Inodes of this process's sockets. */
export function ownSocketInodes(): Set<string> {
  const inodes = new Set<string>();
  let fds: string[];
  try {
    fds = readdirSync("/proc/self/fd");
  } catch {
    return inodes;
  }
  for (const fd of fds) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
      if (match) inodes.add(match[1] as string);
    } catch {
      // closed meanwhile
    }
  }
  return inodes;
}

/** Listening sockets on `port` that are not this process's: each one takes part of the connections. */
export function foreignListeners(port: number): string[] {
  const own = ownSocketInodes();
  return [...listeningInodes(port)].filter((inode) => !own.has(inode) && inode !== "0");
}

export interface ListenerOwner {
  pid: number;
  /** Its command line, cut at 200 characters; "" when it cannot be read. */
  command: string;
  /** This process's parent or child, which may share the port by design (several serving processes). */
  family: boolean;
}

/**
 * The processes holding these socket inodes that this user may look into (the same user's: the
 * only ones the kernel lets share the port).
 */
export function ownersOf(inodes: string[]): ListenerOwner[] {
  const wanted = new Set(inodes.map((inode) => `socket:[${inode}]`));
  const owners: ListenerOwner[] = [];
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((name) => /^\d+$/.test(name));
  } catch {
    return owners;
  }
  for (const pid of pids) {
    if (Number(pid) === process.pid) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // another user's, or gone
    }
    const holds = fds.some((fd) => {
      try {
        return wanted.has(readlinkSync(`/proc/${pid}/fd/${fd}`));
      } catch {
        return false;
      }
    });
    if (!holds) continue;
    let parent = -1;
    let command = "";
    try {
      parent = Number(/^\S+ \(.*\) \S (\d+)/s.exec(readFileSync(`/proc/${pid}/stat`, "utf8"))?.[1] ?? -1);
      command = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").trim().slice(0, 200);
    } catch {
      // gone meanwhile
    }
    owners.push({
      pid: Number(pid),
      command,
      family: parent === process.pid || Number(pid) === process.ppid,
    });
  }
  return owners;
}

/**
 * Checks now and every `intervalMs` (unref'd); `report` gets the foreign inodes when there are
 * any, once per new set. Returns stop().
 */
export function watchForeignListeners(
  port: number,
  report: (inodes: string[]) => void,
  intervalMs = 10_000,
): () => void {
  let reported = "";
  const check = () => {
    const foreign = foreignListeners(port).sort();
    const key = foreign.join(",");
    if (foreign.length > 0 && key !== reported) report(foreign);
    reported = key;
  };
  check();
  const timer = setInterval(check, intervalMs);
  timer.unref?.();
  return () => clearInterval(timer);
}
