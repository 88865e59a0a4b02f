/**
 * One regauth per listen address (issue 17 item 2). With `server.workers` above 1 every process
 * binds the port with SO_REUSEPORT, which would let a second regauth (a stale one, another config)
 * bind it too and take part of the traffic. A second serve's checkCanListen already fails once the
 * first is listening (its probe binds without SO_REUSEPORT); this lock closes the window while the
 * first is still starting. It is an abstract unix socket: no file to go stale, gone with the
 * process however it ends (Linux, unix(7)).
 */
import { CommandFailed } from "../cli/args.ts";

export interface PortLock {
  release(): void;
}

/** Holds the lock for `addr` (HOST:PORT) until released or the process ends; throws CommandFailed when held. */
export function holdPortLock(addr: string): PortLock {
  try {
    const socket = Bun.listen({ unix: `\0regauth-listen:${addr}`, socket: { data() {} } });
    return { release: () => socket.stop(true) };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EADDRINUSE") return { release() {} }; // no abstract sockets here: the probe still guards
    throw new CommandFailed(
      `cannot listen on ${addr}: the address is already in use by another regauth (or one that is starting). Stop it, or choose another with --addr HOST:PORT (or REGAUTH_ADDR, or server.addr in the config file)`,
    );
  }
}
