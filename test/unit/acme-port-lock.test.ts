import { describe, expect, it } from "bun:test";
import { holdPortLock, portLockName } from "../../src/acme/port-lock.ts";

describe("holdPortLock (src/acme/port-lock.ts)", () => {
  it("is taken once per port and user; a second taker is told the address is in use", () => {
    const port = 40_000 + Math.floor(Math.random() * 20_000);
    holdPortLock(port);
    expect(() => holdPortLock(port)).toThrow(
      /the address is already in use \(another regauth holds this port/,
    );
    holdPortLock(port + 1 > 65_535 ? port - 1 : port + 1); // another port is another lock
  });

  it("needs no lock for port 0 (the kernel picks a free one)", () => {
    holdPortLock(0);
    holdPortLock(0);
  });

  it("is an abstract socket name (no file left behind), per user", () => {
    expect(portLockName(8443)).toMatch(/^\0regauth-\d+-port-8443$/);
  });
});
