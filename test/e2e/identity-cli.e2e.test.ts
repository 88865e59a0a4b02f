/**
 * `regauth identity link|unlink|list` on the compiled binary (issue 15 item 3): the link an
 * administrator makes is recorded with the provider's issuer from the config, audited, and
 * refused for unknown accounts, robots, unknown providers and a second link; unlink removes it.
 */
import { describe, expect, it } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTempDir } from "../helpers.ts";
import { ensureBinary, run } from "./harness.ts";

describe("regauth identity", () => {
  const dir = makeTempDir("regauth-identity-cli-");
  const config = join(dir, "auth_config.yml");
  writeFileSync(
    config,
    `token: {issuer: test}
data_dir: ${join(dir, "data")}
identity_providers:
  public_url: "https://registry.example.com"
  oidc:
    - {name: kc, issuer: "https://sso.example.com/realms/main", client_id: regauth, client_secret: s}
  github:
    - {name: gh, client_id: x, client_secret: y, web_url: "https://ghe.example.com/", api_url: "https://ghe.example.com/api/v3"}
`,
  );
  const regauth = (...argv: string[]) =>
    run([ensureBinary(), ...argv, "--config", config], { stdin: "carol-password-1\n" });

  it("links, lists, refuses what it must, unlinks", async () => {
    expect((await regauth("user", "add", "carol", "--password-stdin")).exitCode).toBe(0);
    const linked = await regauth(
      "identity",
      "link",
      "carol",
      "--provider",
      "kc",
      "--subject",
      "f81d4fae-7dec",
    );
    expect(linked.stderr).toBe("");
    expect(linked.stdout).toBe("linked carol to the kc identity f81d4fae-7dec\n");
    const listed = await regauth("identity", "list", "carol");
    expect(listed.stdout).toBe("kc\tf81d4fae-7dec\thttps://sso.example.com/realms/main\tlinked by admin\n");
    for (const [argv, message] of [
      [["identity", "link", "carol", "--provider", "kc", "--subject", "other"], /linked already/],
      [["identity", "link", "nobody", "--provider", "kc", "--subject", "x"], /no user "nobody"/],
      [["identity", "link", "carol", "--provider", "github", "--subject", "x"], /no provider "github"/],
      [["identity", "link", "carol", "--provider", "kc"], /--subject is required/],
      [["identity", "link", "carol", "--provider", "kc", "--subject", "a\u0007b"], /control characters/],
      [["identity", "frobnicate", "carol"], /unknown subcommand/],
    ] as const) {
      const result = await regauth(...argv);
      expect({ argv, exitCode: result.exitCode === 0 }).toEqual({ argv, exitCode: false });
      expect(result.stderr).toMatch(message);
    }
    const github = await regauth("identity", "link", "carol", "--provider", "gh", "--subject", "583231");
    expect(github.stdout).toBe("linked carol to the gh identity 583231\n");
    expect((await regauth("identity", "list", "carol")).stdout).toContain(
      "gh\t583231\thttps://ghe.example.com\t",
    );
    expect((await regauth("identity", "unlink", "carol", "--provider", "gh")).exitCode).toBe(0);
    const audit = await regauth("audit", "--kind", "identity.linked");
    expect(audit.stdout).toContain("identity.linked");
    expect((await regauth("identity", "unlink", "carol", "--provider", "kc")).stdout).toBe(
      "unlinked carol from kc\n",
    );
    expect((await regauth("identity", "list", "carol")).stdout).toBe("");
  }, 60_000);
});
