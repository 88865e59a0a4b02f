/**
 * One connection to the LDAP server, with its bind state tracked by us rather than trusted to the
 * library. ldapts reconnects transparently when an operation is started on a closed socket, and
 * the new connection is unauthenticated and, for StartTLS, not encrypted (ldapts README, and
 * security.md §4.2). So every operation here first checks, synchronously, that the socket it was
 * given is still the one we opened and secured; a closed connection is never reused: the next
 * `open()` builds a new client, upgrades it, and the caller binds again.
 */
import { readFileSync } from "node:fs";
import net, { isIP, type Socket } from "node:net";
import tls, { type ConnectionOptions } from "node:tls";
import { Client, type Entry, type Filter } from "ldapts";
import type { LdapSettings } from "./config.ts";

/** Who the connection is bound as, as far as we know. */
export type BindState = "anonymous" | "service" | "user";

export class ConnectionLost extends Error {
  constructor() {
    super("the LDAP connection closed");
    this.name = "ConnectionLost";
  }
}

/**
 * A pooled connection idle longer than this is replaced rather than reused. Stateful firewalls and
 * NAT drop idle TCP state silently (the next request then hangs until the operation timeout), and
 * Active Directory closes idle LDAP connections after MaxConnIdleTime (900 s by default).
 */
const MAX_IDLE_MS = 120_000;

export class LdapConnection {
  private client: Client | null = null;
  /** Only meaningful while `client` is connected. */
  bindState: BindState = "anonymous";
  /** True when open() kept an existing socket: a failure on it may be a stale socket worth one retry. */
  reused = false;
  private lastUsedMs = 0;
  /**
   * Set when any socket of the current client closes. ldapts's own flag misses one case: after
   * StartTLS its close handler is still on the plain socket and compares it with the TLS socket, so
   * a closed StartTLS connection stays "connected" and the next request waits for the operation
   * timeout (ldapts 9.2.0 Client._onConnect socketClose). We watch the sockets ourselves.
   */
  private socketClosed = false;

  constructor(
    private readonly settings: LdapSettings,
    private readonly nowMs: () => number = () => performance.now(),
  ) {}

  get isOpen(): boolean {
    return this.client?.isConnected === true && !this.socketClosed;
  }

  /**
   * Makes sure there is a client whose socket is open: the current one if it is still open and was
   * used recently, else a new one, connected and (for StartTLS) upgraded before anything else is
   * sent. A failed upgrade throws and leaves nothing behind, so no bind can follow in clear text.
   * Plain and LDAPS clients connect on their first operation (ldapts connects lazily).
   */
  async open(): Promise<void> {
    const now = this.nowMs();
    const idleMs = now - this.lastUsedMs;
    this.lastUsedMs = now;
    if (this.isOpen && idleMs <= MAX_IDLE_MS) {
      this.reused = true;
      return;
    }
    this.close();
    this.reused = false;
    const { settings } = this;
    this.socketClosed = false;
    const watch = <S extends Socket>(socket: S): S => {
      socket.once("close", () => {
        if (this.client === client) this.socketClosed = true;
      });
      return socket;
    };
    const client: Client = new Client({
      url: settings.url,
      connectTimeout: settings.connectTimeoutMs,
      timeout: settings.operationTimeoutMs,
      strictDN: true,
      createConnection: ((...args: unknown[]) =>
        watch((net.connect as (...a: unknown[]) => Socket)(...args))) as typeof net.connect,
      createSecureConnection: ((...args: unknown[]) =>
        watch((tls.connect as (...a: unknown[]) => tls.TLSSocket)(...args))) as typeof tls.connect,
      ...(settings.tls === "always" ? { tlsOptions: this.tlsOptions() } : {}),
    });
    this.client = client;
    if (settings.tls !== "starttls") return;
    try {
      // startTLS connects, sends the StartTLS extended operation (RFC 4511 §4.14), then upgrades
      // the same socket; ldapts puts no time limit on the handshake, hence the outer one.
      await withTimeout(client.startTLS(this.tlsOptions()), settings.connectTimeoutMs, "StartTLS");
    } catch (error) {
      this.close();
      throw error;
    }
  }

  /** Simple bind. Marks the state before sending, so a failed bind never leaves a stale "service". */
  async bind(dn: string, password: string, as: BindState): Promise<void> {
    const client = this.live();
    this.bindState = "anonymous";
    await client.bind(dn, password);
    this.bindState = as;
  }

  async search(base: string, filter: Filter, attributes: string[]): Promise<Entry[]> {
    const client = this.live();
    const result = await client.search(base, {
      scope: "sub",
      filter,
      attributes,
      // Two entries are enough to know the filter is ambiguous (RFC 4511 §4.5.1.4 sizeLimit).
      sizeLimit: 2,
      timeLimit: Math.ceil(this.settings.operationTimeoutMs / 1000),
      derefAliases: "never",
    });
    return result.searchEntries;
  }

  /** Drops the connection (best effort unbind); the next open() starts afresh. */
  close(): void {
    const client = this.client;
    this.client = null;
    this.bindState = "anonymous";
    if (client) void client.unbind().catch(() => {});
  }

  /**
   * The client, if its socket is the one we opened. Synchronous on purpose: between this check and
   * ldapts's own (inside the operation, before any I/O callback can run) the socket cannot change.
   */
  private live(): Client {
    const client = this.client;
    if (!client) throw new ConnectionLost();
    // Not yet connected is fine for plain and LDAPS: the first bind connects. For StartTLS open()
    // has already connected and upgraded, so "not connected" means it closed since.
    const needsSocket = this.settings.tls === "starttls" || this.reused || this.bindState !== "anonymous";
    if (needsSocket && !this.isOpen) {
      this.close();
      throw new ConnectionLost();
    }
    return client;
  }

  private tlsOptions(): ConnectionOptions {
    const { settings } = this;
    const options: ConnectionOptions = {
      host: settings.host,
      rejectUnauthorized: !settings.insecureSkipVerify,
      minVersion: "TLSv1.2",
    };
    // SNI takes host names only (RFC 6066 §3); for an IP address Node checks the IP SANs via `host`.
    if (isIP(settings.host) === 0) options.servername = settings.host;
    // Read on every new connection, so a renewed CA file takes effect without a restart.
    if (settings.caCertificatePath !== undefined)
      options.ca = readFileSync(settings.caCertificatePath, "utf8");
    return options;
  }
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
