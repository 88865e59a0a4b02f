/** systemd/regauth.service: valid for systemd, and carrying the settings docs/deployment.md relies on. */
import { describe, expect, it } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTempDir } from "../helpers.ts";
import { BINARY, ensureBinary, REPO_ROOT, run } from "./harness.ts";

const UNIT_PATH = join(REPO_ROOT, "systemd/regauth.service");
const unit = readFileSync(UNIT_PATH, "utf8");
const settings = new Map<string, string[]>();
for (const line of unit.split("\n")) {
  const match = /^([A-Za-z]+)=(.*)$/.exec(line);
  if (match)
    settings.set(match[1] as string, [...(settings.get(match[1] as string) ?? []), match[2] as string]);
}
const hasSystemdAnalyze = Bun.which("systemd-analyze") !== null;

describe("systemd/regauth.service", () => {
  it.each([
    ["DynamicUser", "yes"],
    ["StateDirectory", "regauth"],
    ["ConfigurationDirectory", "regauth"],
    ["ExecStart", "/usr/local/bin/regauth serve --config ${CONFIGURATION_DIRECTORY}/config.yml"],
    ["ExecReload", "/bin/kill -HUP $MAINPID"],
    ["Restart", "on-failure"],
    ["NoNewPrivileges", "yes"],
    ["ProtectSystem", "strict"],
    ["ProtectHome", "yes"],
    ["PrivateTmp", "yes"],
    ["PrivateDevices", "yes"],
    ["RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"],
    ["SystemCallFilter", "@system-service"],
    ["CapabilityBoundingSet", ""],
    ["LockPersonality", "yes"],
    ["MemoryDenyWriteExecute", "no"],
  ])("sets %s=%s", (key, value) => {
    expect(settings.get(key)).toEqual([value]);
  });

  it.skipIf(!hasSystemdAnalyze)("passes systemd-analyze verify", async () => {
    ensureBinary();
    // verify checks that ExecStart's binary exists, so point it at the one we built.
    const copy = join(makeTempDir("unit-"), "regauth.service");
    writeFileSync(copy, unit.replace("ExecStart=/usr/local/bin/regauth", `ExecStart=${BINARY}`));
    const result = await run(["systemd-analyze", "verify", copy]);
    expect(result.stderr).toBe("");
    expect(result.exitCode).toBe(0);
  });
});
