/** Issue 9 item 8: start-up does no throw-away work (a bcrypt hash at module load cost 58 ms). */
import { afterEach, describe, expect, it, spyOn } from "bun:test";

const spies: { mockRestore(): void }[] = [];
afterEach(() => {
  for (const spy of spies.splice(0)) spy.mockRestore();
});

describe("nothing is hashed at module load", () => {
  it("loading the verifier, the throttle and the server wiring hashes no password", async () => {
    const hash = spyOn(Bun.password, "hash");
    const hashSync = spyOn(Bun.password, "hashSync");
    spies.push(hash, hashSync);
    // A query string makes each a fresh module instance, evaluated now, under the spies.
    await import(`../../src/authn/password-verifier.ts?load-check=${Date.now()}`);
    await import(`../../src/authn/throttle.ts?load-check=${Date.now()}`);
    await import(`../../src/server.ts?load-check=${Date.now()}`);
    expect(hash).not.toHaveBeenCalled();
    expect(hashSync).not.toHaveBeenCalled();
  });
});
