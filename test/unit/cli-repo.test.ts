/**
 * `regauth repo` over a fake ManagementClient: arguments, the calls each subcommand makes, and
 * what it prints (tables, the tag's details with its docker pull line, --output json).
 */
import { describe, expect, it } from "bun:test";
import { parseReference } from "../../src/cli/repo.ts";
import { humanSize } from "../../src/management/views.ts";
import type { SyncReportView, TagView } from "../../src/cli/views.ts";
import { NotFound } from "../../src/errors.ts";
import { main } from "../../src/main.ts";
import { fakeClient, fakeIo } from "../cli-fakes.ts";

const REPO = {
  name: "team/app",
  first_push_at: "2026-12-01T10:00:00Z",
  last_push_at: "2026-12-01T11:00:00Z",
};
const TAG: TagView = {
  repository: "team/app",
  tag: "v1",
  digest: `sha256:${"ab".repeat(32)}`,
  media_type: "application/vnd.oci.image.manifest.v1+json",
  size_bytes: 1532,
  pushed_by: "alice",
  pushed_from: "192.0.2.7",
  first_push_at: "2026-12-01T10:00:00Z",
  last_push_at: "2026-12-01T11:00:00Z",
  pull_count: 3,
  last_pull_at: "2026-12-01T11:30:00Z",
  pull_command: "docker pull 127.0.0.1:5000/team/app:v1",
};
const REPORT: SyncReportView = {
  repositories: 3,
  tags: 4,
  added: 2,
  moved: 1,
  deleted_tags: 1,
  deleted_repositories: 0,
  incomplete_repositories: [],
  duration_ms: 1234,
};
const answers = {
  listRepositories: { items: [REPO], next_cursor: null },
  getRepository: { ...REPO, tag_count: 1 },
  listTags: { items: [TAG], next_cursor: null },
  getTag: TAG,
  syncRepositories: REPORT,
};

async function repo(argv: string[], overrides: Partial<typeof answers> | Record<string, unknown> = {}) {
  const { client, calls } = fakeClient({ ...answers, ...overrides });
  const io = fakeIo(client);
  const exit = await main(["repo", ...argv], io);
  return { exit, calls, stdout: io.stdout, stderr: io.stderr };
}

describe("regauth repo", () => {
  it("lists repositories with an optional PATTERN", async () => {
    const listed = await repo(["list", "team/*"]);
    expect(listed.exit).toBe(0);
    expect(listed.calls[0]).toEqual({
      method: "listRepositories",
      args: [{ pattern: "team/*" }, { limit: 500 }],
    });
    expect(listed.stdout).toBe(
      "NAME      LAST PUSH             FIRST PUSH\nteam/app  2026-12-01T11:00:00Z  2026-12-01T10:00:00Z\n",
    );
    expect(JSON.parse((await repo(["list", "--output", "json"])).stdout)).toEqual([REPO]);
  });

  it("follows the cursor to the end, also across empty pages", async () => {
    let page = 0;
    const pages = [
      { items: [REPO], next_cursor: "c1" },
      { items: [], next_cursor: "c2" },
      { items: [{ ...REPO, name: "team/db" }], next_cursor: null },
    ];
    const listed = await repo(["list", "--output", "json"], { listRepositories: () => pages[page++] });
    expect((JSON.parse(listed.stdout) as { name: string }[]).map((r) => r.name)).toEqual([
      "team/app",
      "team/db",
    ]);
  });

  it("shows a tag with the docker pull line, --registry naming the host", async () => {
    const shown = await repo(["show", "team/app:v1", "--registry", "registry.example.com"]);
    expect(shown.exit).toBe(0);
    expect(shown.calls[0]).toEqual({ method: "getTag", args: [{ name: "team/app", tag: "v1" }] });
    expect(shown.stdout).toContain(`digest:      sha256:${"ab".repeat(32)}\n`);
    expect(shown.stdout).toContain("size:        1.5 kB (1532 bytes, the manifest)\n");
    expect(shown.stdout).toContain("pushed from: 192.0.2.7\n");
    expect(shown.stdout).toEndWith("\n  docker pull registry.example.com/team/app:v1\n");
  });

  it("shows a repository with its tags", async () => {
    const shown = await repo(["show", "team/app"]);
    expect(shown.stdout).toContain("tags:        1\n\nTAG  DIGEST               SIZE    PUSHED BY");
    expect(shown.stdout).toContain("v1   sha256:abababababab  1.5 kB  alice");
  });

  it("prints what a sync changed and how long it took", async () => {
    const synced = await repo(["sync"]);
    expect(synced.stdout).toBe(
      "synced 3 repositories, 4 tags in 1.2 s: 2 added, 1 moved, 1 tags deleted, 0 repositories deleted\n",
    );
  });

  it.each([
    [["show"], 2, /missing NAME\[:TAG\]/],
    [["show", "team/app:"], 2, /expected NAME or NAME:TAG/],
    [["show", "a:b:c"], 2, /expected NAME or NAME:TAG/],
    [["list", "a", "b"], 2, /unexpected argument b/],
    [["tags"], 2, /missing NAME/],
    [["frob"], 2, /unknown subcommand "frob"/],
    [[], 2, /which subcommand\? list, tags, show or sync/],
  ] as const)("refuses %p (exit %p)", async (argv, exit, err) => {
    const result = await repo([...argv]);
    expect(result.exit).toBe(exit);
    expect(result.stderr).toMatch(err);
  });

  it("says in one line that a repository is not there (or not yours to see)", async () => {
    const missing = await repo(["show", "team/app:v9"], { getTag: new NotFound('no repository "team/app"') });
    expect(missing.exit).toBe(1);
    expect(missing.stderr).toBe('regauth repo show: no repository "team/app"\n');
  });

  it("has --help", async () => {
    const help = await repo(["--help"]);
    expect(help.exit).toBe(0);
    expect(help.stdout).toContain("regauth repo SUBCOMMAND");
  });
});

describe("repo helpers", () => {
  it.each([
    [0, "0 B"],
    [999, "999 B"],
    [1532, "1.5 kB"],
    [52_000_000, "52.0 MB"],
  ])("humanSize(%p) = %p", (bytes, text) => {
    expect(humanSize(bytes)).toBe(text);
  });
  it("parses NAME and NAME:TAG", () => {
    expect(parseReference("team/app")).toEqual({ name: "team/app" });
    expect(parseReference("team/app:v1.2")).toEqual({ name: "team/app", tag: "v1.2" });
  });
});
