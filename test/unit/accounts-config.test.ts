import { describe, expect, it } from "bun:test";
import { ConfigError } from "../../src/errors.ts";
import { loadTestConfig } from "../helpers.ts";

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

  const bad: [string, Record<string, unknown>, string][] = [
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
