/**
 * Review M5 against the compiled binary: with only `real_ip_header` set, the address is the entry
 * the nearest proxy appended, not the client-written first one. Header shapes as nginx
 * (`$proxy_add_x_forwarded_for`: "client-sent, appended") and HAProxy (`option forwardfor`: its
 * own header line after the client's) send them.
 */
import { describe, expect, it } from "bun:test";
import { hashPassword } from "../helpers.ts";
import { decodeToken, startRegauth } from "./harness.ts";

describe("real_ip_header behind an appending proxy (compiled binary)", async () => {
  const regauth = await startRegauth({
    configYaml: `
server:
  addr: 127.0.0.1:{{PORT}}
  real_ip_header: X-Forwarded-For
token:
  issuer: e2e-issuer
  expiration: 300
users:
  alice:
    password: "${hashPassword("alice-secret")}"
acl:
  - match: {ip: 10.0.0.0/8}
    actions: ["*"]
  - match: {account: alice}
    actions: [pull]
`,
  });
  const realm = `${regauth.url}/auth?service=registry&scope=repository:prod/app:pull,delete`;
  const basic = (password: string) => `Basic ${Buffer.from(`alice:${password}`).toString("base64")}`;
  const shapes: [string, (spoofed: string) => [string, string][]][] = [
    ["nginx", (spoofed) => [["x-forwarded-for", `${spoofed}, 203.0.113.50`]]],
    [
      "HAProxy",
      (spoofed) => [
        ["x-forwarded-for", spoofed],
        ["x-forwarded-for", "203.0.113.51"],
      ],
    ],
  ];

  for (const [proxy, headers] of shapes) {
    it(`${proxy}: a spoofed 10.1.2.3 gets no delete through an ip: 10.0.0.0/8 rule`, async () => {
      const res = await fetch(realm, {
        headers: [...headers("10.1.2.3"), ["authorization", basic("alice-secret")]],
      });
      expect(res.status).toBe(200);
      const { token } = (await res.json()) as { token: string };
      expect(decodeToken(token).claims.access).toEqual([
        { type: "repository", name: "prod/app", actions: ["pull"] },
      ]);
    });

    it(`${proxy}: guesses with a new spoofed first entry each time are throttled by the appended one`, async () => {
      const statuses: number[] = [];
      for (let i = 0; i < 14; i++) {
        const res = await fetch(realm, {
          headers: [...headers(`10.1.2.${i}`), ["authorization", basic(`guess-${i}`)]],
        });
        await res.body?.cancel();
        statuses.push(res.status);
      }
      expect(statuses.filter((s) => s === 401)).toHaveLength(10);
      expect(statuses.filter((s) => s === 429)).toHaveLength(4);
    });
  }
});
