/**
 * One regauth per listen address (issue 17 item 2). With `server.workers` above 1 every process
 * binds the port with SO_REUSEPORT, which would let a second regauth (a stale one, another config)
 * bind it too and take part of the traffic. A second serve's checkCanListen already fails once the
 * first is listening (its probe binds without SO_REUSEPORT); this lock closes the window while the
 * first is still starting. It is an abstract unix socket: no file to go stale, gone with the
 * process however it ends (Linux, unix(7)). The name is the address as written, so a lock of this
 * user on another address that shares the port (0.0.0.0:5001 and 127.0.0.1:5001, localhost:5001)
 * stops a start too: SO_REUSEPORT lets those share the port as well, and the more specific one
 * would take every connection to its address.
 *
 * Abstract names have no owner or permissions: any local user can bind this one first. Only a
 * process of this user can share the port with SO_REUSEPORT (socket(7): "all of the processes
 * binding to the same address must have the same effective UID"), so a name held by another user
 * guards nothing and is no reason to refuse to start (review of issue 17: otherwise any local user
 * could keep regauth off port 443, which that user cannot bind): serve then starts with the
 * probe alone, and says so.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { isIP } from "node:net";
import { CommandFailed } from "../cli/args.ts";
import { log } from "../log.ts";

export interface PortLock {
  release(): void;
}

const PREFIX = "regauth-listen:";

/** Holds the lock for `addr` (HOST:PORT) until released or the process ends; throws CommandFailed when held. */
export function holdPortLock(addr: string): PortLock {
  const name = `${PREFIX}${addr}`;
  for (let attempt = 0; ; attempt++) {
    try {
      const socket = Bun.listen({ unix: `\0${name}`, socket: { data() {} } });
      // Another spelling of an address that shares this port (0.0.0.0:5001 for 127.0.0.1:5001,
      // localhost:5001): a regauth starting there would take this one's traffic, or part of it.
      const overlapping = overlappingLock(addr);
      if (overlapping !== null) {
        socket.stop(true);
        throw new CommandFailed(
          `cannot listen on ${addr}: regauth pid ${overlapping.pid} holds ${overlapping.addr}, which shares this port (it serves, or is starting). Stop it, or choose another port with --addr HOST:PORT (or REGAUTH_ADDR, or server.addr in the config file)`,
        );
      }
      return { release: () => socket.stop(true) };
    } catch (error) {
      if (error instanceof CommandFailed) throw error;
      if ((error as NodeJS.ErrnoException).code !== "EADDRINUSE") return { release() {} }; // no abstract sockets here: the probe still guards
    }
    const holder = lockHolder(name);
    // Gone between the bind and the look (it exited): try once more.
    if (holder === null && attempt === 0) continue;
    if (holder !== null && holder.uid === process.geteuid?.())
      throw new CommandFailed(
        `cannot listen on ${addr}: the address is already in use by another regauth (or one that is starting: pid ${holder.pid}). Stop it, or choose another with --addr HOST:PORT (or REGAUTH_ADDR, or server.addr in the config file)`,
      );
    log.warn("another user's process holds this address's regauth lock; starting without it", {
      addr,
      lock: `@${name}`,
      ...(holder ? { pid: holder.pid, uid: holder.uid } : {}),
      why: "only this user's processes can share the port (SO_REUSEPORT); the port's own check still guards",
    });
    return { release() {} };
  }
}

/** The abstract sockets in /proc/net/unix: name (without the @) and inode; none when unreadable. */
function abstractSockets(): { name: string; inode: string }[] {
  try {
    return readFileSync("/proc/net/unix", "utf8")
      .split("\n")
      .map((line) => line.trim().split(/\s+/))
      .filter((fields) => fields[7]?.startsWith("@") === true)
      .map((fields) => ({ name: (fields[7] as string).slice(1), inode: fields[6] as string }));
  } catch {
    return [];
  }
}

/**
 * A lock of this user on another address that shares `addr`'s port (a wildcard and a host on it,
 * two names), or null. Two that start at once may each see the other and both stop: the safe side.
 */
function overlappingLock(addr: string): { addr: string; pid: number } | null {
  const ours = splitAddress(addr);
  if (ours === null) return null;
  for (const socket of abstractSockets()) {
    if (!socket.name.startsWith(PREFIX)) continue;
    const other = socket.name.slice(PREFIX.length);
    const theirs = splitAddress(other);
    if (other === addr || theirs === null || theirs.port !== ours.port) continue;
    if (!hostsOverlap(ours.host, theirs.host)) continue;
    const holder = holderOf(new Set([socket.inode]));
    if (holder !== null && holder.uid === process.geteuid?.()) return { addr: other, pid: holder.pid };
  }
  return null;
}

function splitAddress(addr: string): { host: string; port: string } | null {
  const colon = addr.lastIndexOf(":");
  return colon < 0 ? null : { host: addr.slice(0, colon), port: addr.slice(colon + 1) };
}

/** Two different IP literals, neither a wildcard, never share a port's traffic; anything else may. */
function hostsOverlap(a: string, b: string): boolean {
  const isSpecific = (host: string) => isIP(host) !== 0 && host !== "0.0.0.0" && host !== "::";
  return !(isSpecific(a) && isSpecific(b) && a !== b);
}

/**
 * The process holding the abstract socket `name`, with its effective uid: the listening socket's
 * inode in /proc/net/unix, then a process whose fds hold it. Null when none we may look at does
 * (another user's, unless we are root).
 */
export function lockHolder(name: string): { pid: number; uid: number } | null {
  return holderOf(new Set(abstractSockets().flatMap((s) => (s.name === name ? [s.inode] : []))));
}

function holderOf(inodes: Set<string>): { pid: number; uid: number } | null {
  if (inodes.size === 0) return null;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue; // another user's (or gone)
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${entry}/fd/${fd}`);
      } catch {
        continue;
      }
      const inode = target.match(/^socket:\[(\d+)\]$/)?.[1];
      if (inode === undefined || !inodes.has(inode)) continue;
      try {
        const uid = readFileSync(`/proc/${entry}/status`, "utf8").match(/^Uid:\s+\d+\s+(\d+)/m)?.[1];
        if (uid !== undefined) return { pid: Number(entry), uid: Number(uid) };
      } catch {}
    }
  }
  return null;
}
