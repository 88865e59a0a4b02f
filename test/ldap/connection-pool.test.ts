/** The LDAP connection pool's bound and queue, without a server (connections are opened lazily). */
import { expect, test } from "bun:test";
import { checkLdapConfig } from "../../src/ldap/config.ts";
import { LdapConnectionPool, PoolTimeout } from "../../src/ldap/connection-pool.ts";

const settings = checkLdapConfig(
  {
    addr: "127.0.0.1:1",
    tls: "",
    insecure_tls_skip_verify: false,
    base: "dc=example,dc=org",
    filter: "(uid=${account})",
    initial_bind_as_user: false,
    connect_timeout_seconds: 1,
    timeout_seconds: 0.1,
    pool_size: 2,
  },
  "ldap_auth",
  [],
);
if (!settings) throw new Error("settings");

test("never more than pool_size connections out; the next waits and gets a released one", async () => {
  const pool = new LdapConnectionPool(settings);
  const a = await pool.acquire();
  const b = await pool.acquire();
  expect(pool.inUse).toBe(2);
  const third = pool.acquire();
  pool.release(a, false);
  expect(await third).toBe(a);
  expect(pool.inUse).toBe(2);
  pool.release(b, true);
  expect(pool.inUse).toBe(1);
  pool.close();
});

test("a login waits at most the operation timeout for a connection", async () => {
  const pool = new LdapConnectionPool(settings);
  await pool.acquire();
  await pool.acquire();
  const started = performance.now();
  await expect(pool.acquire()).rejects.toBeInstanceOf(PoolTimeout);
  expect(performance.now() - started).toBeLessThan(1000);
  pool.close();
});
