import { describe, expect, it } from "bun:test";
import { ConfigError } from "../../src/errors.ts";
import { loadTestConfig } from "../helpers.ts";
import { writeHook } from "../hook-fixtures.ts";

describe("accounts config sections", () => {
  it("default: registration off, personal namespaces on", async () => {
    const { config } = await loadTestConfig({});
    expect(config.registration).toEqual({ mode: "off" });
    expect(config.accounts).toEqual({ personal_namespaces: true, group_labels: [] });
  });

  it("accepts the documented values", async () => {
    const { config } = await loadTestConfig({
      registration: { mode: "approval" },
      accounts: { personal_namespaces: false },
    });
    expect(config.registration.mode).toBe("approval");
    expect(config.accounts.personal_namespaces).toBe(false);
  });

  it("registration next to ldap_auth or ext_auth only with allow_with_external_users (review M4)", async () => {
    const hook = writeHook("exit 2");
    const ldap = {
      addr: "127.0.0.1:389",
      base: "dc=example,dc=org",
      filter: "(uid=${account})",
    };
    for (const external of [{ ext_auth: { command: hook } }, { ldap_auth: ldap }]) {
      for (const mode of ["open", "approval"] as const) {
        const error = await loadTestConfig({ registration: { mode }, ...external }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ConfigError);
        const problem = (error as ConfigError).problems.find((p) => p.path === "registration.mode");
        expect(problem?.message).toContain("allow_with_external_users");
        const { config } = await loadTestConfig({
          registration: { mode, allow_with_external_users: true },
          ...external,
        });
        expect(config.registration.mode).toBe(mode);
      }
      // off needs nothing; the flag alone changes nothing.
      expect((await loadTestConfig({ ...external })).config.registration.mode).toBe("off");
      await loadTestConfig({ registration: { mode: "off", allow_with_external_users: false }, ...external });
    }
  });

  const bad: [string, Record<string, unknown>, string][] = [
    [
      "a non-boolean allow_with_external_users",
      { registration: { allow_with_external_users: "yes" } },
      "registration.allow_with_external_users",
    ],
    ["an unknown mode", { registration: { mode: "yes" } }, "registration.mode"],
    ["a typo'd key", { registration: { mdoe: "open" } }, "registration.mdoe"],
    ["a wrong type", { accounts: { personal_namespaces: "no" } }, "accounts.personal_namespaces"],
    ["an unknown accounts key", { accounts: { registration: "open" } }, "accounts.registration"],
  ];
  for (const [title, config, path] of bad) {
    it(`refuses ${title} with its key path`, async () => {
      const error = await loadTestConfig(config).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).problems.map((p) => p.path)).toContain(path);
    });
  }
});
