/**
 * One regauth per port while its listener sets SO_REUSEPORT (issue 16, for the certificate swap in
 * src/server.ts swapListener). The kernel then lets any process of the same user that sets it too
 * bind the port and take half the new connections; checkCanListen's bind without SO_REUSEPORT
 * refuses a second regauth only once the first listens, not while the first orders its
 * certificate (seconds to minutes), so two that start together both passed it and both served.
 *
 * The lock is an abstract Unix socket (unix(7)): a name, not a file, so nothing is left behind;
 * the kernel frees it when the process dies, however it dies; and it lives in the network
 * namespace, as ports do, so containers with their own network do not collide.
 */
import { userInfo } from "node:os";

/** Another regauth holds the port, or the lock could not be taken. */
export class PortLockError extends Error {
  override name = "PortLockError";
}

/** The lock's name for `port`: per user, as SO_REUSEPORT groups are (same effective UID). */
export function portLockName(port: number): string {
  return `\0regauth-${userInfo().uid}-port-${port}`;
}

/**
 * Takes the lock for `port` until the process ends (unref'd: it never keeps the process alive).
 * Throws an Error saying another regauth holds it. Port 0 needs none: the kernel picks a port
 * nobody else has.
 */
export function holdPortLock(port: number): void {
  if (port === 0) return;
  try {
    Bun.listen({ unix: portLockName(port), socket: { data() {} } }).unref();
  } catch (error) {
    // Refused, not skipped: without the lock a second regauth could share the port. AF_UNIX is
    // in the unit's RestrictAddressFamilies (systemd/regauth.service).
    if ((error as NodeJS.ErrnoException).code !== "EADDRINUSE")
      throw new PortLockError(
        `cannot take regauth's lock for the port (an abstract Unix socket; is AF_UNIX allowed?): ${(error as Error).message.replaceAll("\0", "@")}`,
      );
    // Worded as the bind's EADDRINUSE (src/server.ts BIND_FAILURES): to the operator it is one case.
    throw new PortLockError(
      "the address is already in use (another regauth holds this port: it serves, or is getting its ACME certificate)",
    );
  }
}
