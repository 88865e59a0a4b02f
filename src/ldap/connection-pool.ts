/**
 * A fixed set of LDAP connections handed out one login at a time. A login has its connection to
 * itself from search to user bind, so one user's bind state can never be seen by another login
 * (security.md §4.6: bind state is per connection). The number of connections to the server is
 * bounded by the pool size whatever the load; logins beyond it wait in line, but no longer than the
 * operation timeout.
 */
import type { LdapSettings } from "./config.ts";
import { LdapConnection } from "./connection.ts";

export class PoolTimeout extends Error {
  constructor(waitedMs: number) {
    super(`no LDAP connection became free within ${waitedMs} ms`);
    this.name = "PoolTimeout";
  }
}

interface Waiter {
  resolve(connection: LdapConnection): void;
  timer: ReturnType<typeof setTimeout>;
}

export class LdapConnectionPool {
  private readonly idle: LdapConnection[] = [];
  private readonly waiters: Waiter[] = [];
  private closed = false;

  constructor(
    settings: LdapSettings,
    readonly size: number = settings.poolSize,
    private readonly waitTimeoutMs: number = settings.operationTimeoutMs,
  ) {
    for (let i = 0; i < size; i++) this.idle.push(new LdapConnection(settings));
  }

  /** Number of connections currently handed out. */
  get inUse(): number {
    return this.size - this.idle.length;
  }

  async acquire(): Promise<LdapConnection> {
    if (this.closed) throw new Error("the LDAP connection pool is closed");
    // Most recently used first: its socket is the likeliest to be open and bound already.
    const connection = this.idle.pop();
    if (connection) return connection;
    return new Promise<LdapConnection>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        timer: setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          reject(new PoolTimeout(this.waitTimeoutMs));
        }, this.waitTimeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  /** Returns a connection; a broken one is closed first, so its replacement connects afresh. */
  release(connection: LdapConnection, broken: boolean): void {
    if (broken || this.closed) connection.close();
    const waiter = this.waiters.shift();
    if (waiter) {
      clearTimeout(waiter.timer);
      waiter.resolve(connection);
    } else this.idle.push(connection);
  }

  close(): void {
    this.closed = true;
    for (const connection of this.idle) connection.close();
  }
}
