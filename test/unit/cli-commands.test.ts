/**
 * The management commands over a fake ManagementClient: argument handling, what each calls, and
 * what it prints (tables and --output json). The back-ends are tested on their own
 * (cli-remote-client.test.ts, cli-accounts.test.ts, test/e2e/cli-remote.e2e.test.ts).
 */
import { describe, expect, it } from "bun:test";
import { BadRequest, NotFound } from "../../src/errors.ts";
import { CommandFailed } from "../../src/cli/args.ts";
import { parseExpiry } from "../../src/cli/token.ts";
import { parseTime } from "../../src/cli/audit.ts";
import { main } from "../../src/main.ts";
import { ALICE, CREATED_TOKEN, DEVS, EVENT, fakeClient, fakeIo, GRANT, ROBOT, TOKEN } from "../cli-fakes.ts";

interface Case {
  argv: string[];
  answers?: Parameters<typeof fakeClient>[0];
  exit: number;
  /** The client call the command makes (method and arguments), when it gets that far. */
  call?: [string, ...unknown[]];
  out?: RegExp | string;
  err?: RegExp;
  /** stdout parsed as JSON equals this. */
  json?: unknown;
}

const cases: Case[] = [
  // user
  { argv: ["user"], exit: 2, err: /which subcommand/ },
  { argv: ["user", "frobnicate"], exit: 2, err: /unknown subcommand "frobnicate"/ },
  { argv: ["user", "add"], exit: 2, err: /missing NAME/ },
  { argv: ["user", "add", "alice", "bob"], exit: 2, err: /unexpected argument bob/ },
  { argv: ["user", "add", "alice", "--password", "x"], exit: 2, err: /unknown option --password/ },
  { argv: ["user", "add", "Alice"], exit: 1, err: /invalid user name "Alice"/ },
  {
    argv: ["user", "add", "alice", "--admin"],
    exit: 0,
    call: ["createUser", { name: "alice", password: "secret-password", admin: true }],
    out: "created user alice\n",
  },
  { argv: ["user", "add", "alice", "--output", "json"], exit: 0, json: ALICE },
  { argv: ["user", "add", "alice", "--output", "yaml"], exit: 2, err: /--output must be table or json/ },
  {
    argv: ["user", "list"],
    exit: 0,
    call: ["listUsers", {}, { limit: 500 }],
    out:
      "NAME   STATE             ROLE   CREATED               LAST LOGIN\n" +
      "admin  enabled           admin  2026-12-01T10:00:00Z  2026-12-01T11:30:00Z\n" +
      "alice  enabled           -      2026-12-01T10:00:00Z  never\n" +
      "carol  pending approval  -      2026-12-01T10:00:00Z  never\n",
  },
  {
    argv: ["user", "list", "--state", "pending", "--query", "ca"],
    exit: 0,
    call: ["listUsers", { state: "pending", q: "ca" }, { limit: 500 }],
  },
  { argv: ["user", "list", "--state", "asleep"], exit: 2, err: /--state must be/ },
  { argv: ["user", "list", "--retired"], exit: 0, out: /^NAME\s+RETIRED\nbob\s+2026-12-01T10:00:00Z\n$/ },
  {
    argv: ["user", "list", "--output", "json"],
    exit: 0,
    json: [{ name: "admin" }, ALICE, { name: "carol" }].map((u) => expect.objectContaining(u)),
  },
  {
    argv: ["user", "show", "alice"],
    exit: 0,
    call: ["getUser", { name: "alice" }],
    out: /^NAME.*\nalice\s+enabled/,
  },
  {
    argv: ["user", "passwd", "alice"],
    exit: 0,
    call: ["setPassword", { name: "alice", password: "secret-password" }],
    out: "password of alice changed\n",
  },
  {
    argv: ["user", "passwd", "alice", "--current"],
    exit: 0,
    call: ["setPassword", { name: "alice", password: "new-password", current_password: "secret-password" }],
  },
  {
    argv: ["user", "disable", "alice"],
    exit: 0,
    call: ["updateUser", { name: "alice", enabled: false }],
    out: "disabled alice\n",
  },
  {
    argv: ["user", "enable", "alice"],
    exit: 0,
    call: ["updateUser", { name: "alice", enabled: true }],
    out: "enabled alice\n",
  },
  {
    argv: ["user", "promote", "alice"],
    exit: 0,
    call: ["updateUser", { name: "alice", admin: true }],
    out: /now an administrator/,
  },
  {
    argv: ["user", "demote", "alice"],
    exit: 0,
    call: ["updateUser", { name: "alice", admin: false }],
    out: /no longer/,
  },
  { argv: ["user", "rm", "alice"], exit: 0, call: ["deleteUser", { name: "alice" }], out: /stays retired/ },
  {
    argv: ["user", "release", "alice"],
    exit: 0,
    call: ["releaseName", { name: "alice" }],
    out: /^released alice/,
  },
  // errors from the back-end: one line, exit 1, the subcommand named
  {
    argv: ["user", "show", "bob"],
    answers: { getUser: new NotFound('no user "bob"') },
    exit: 1,
    err: /^regauth user show: no user "bob"\n$/,
  },
  {
    argv: ["user", "show", "bob"],
    answers: { getUser: new CommandFailed("cannot reach https://x: timeout") },
    exit: 1,
    err: /^regauth user show: cannot reach/,
  },
  // perm
  { argv: ["perm"], exit: 2, err: /which subcommand/ },
  { argv: ["perm", "grant", "alice", "team/*"], exit: 2, err: /missing LEVEL/ },
  { argv: ["perm", "grant", "alice", "team/*", "root"], exit: 2, err: /LEVEL must be read, write or admin/ },
  {
    argv: ["perm", "grant", "alice", "team/*", "write"],
    exit: 0,
    call: ["grant", { grantee: "alice", pattern: "team/*", level: "write" }],
    out: "granted write on team/* to alice\n",
  },
  { argv: ["perm", "grant", "alice", "team/*", "write", "--output", "json"], exit: 0, json: GRANT },
  {
    argv: ["perm", "grant", "alice", "Team/*", "read"],
    answers: { grant: new BadRequest("invalid repository pattern") },
    exit: 1,
    err: /invalid repository pattern/,
  },
  {
    argv: ["perm", "revoke", "alice", "team/*"],
    exit: 0,
    call: ["revoke", { grantee: "alice", pattern: "team/*" }],
    out: "revoked alice on team/*\n",
  },
  {
    argv: ["perm", "list", "--user", "alice", "--pattern", "team/*"],
    exit: 0,
    call: ["listPermissions", { user: "alice", pattern: "team/*" }, { limit: 500 }],
    out: "GRANTEE  PATTERN  LEVEL  GRANTED\nalice    team/*   write  2026-12-01T10:05:00Z\n",
  },
  { argv: ["perm", "list", "--output", "json"], exit: 0, json: [GRANT] },
  // group
  {
    argv: ["group", "create", "devs"],
    exit: 0,
    call: ["createGroup", { name: "devs" }],
    out: "created group devs\n",
  },
  {
    argv: ["group", "delete", "devs"],
    exit: 0,
    call: ["deleteGroup", { name: "devs" }],
    out: "deleted group devs\n",
  },
  {
    argv: ["group", "add-member", "devs", "alice"],
    exit: 0,
    call: ["addMember", { group: "devs", user: "alice" }],
    out: "added alice to devs\n",
  },
  {
    argv: ["group", "remove-member", "devs", "alice"],
    exit: 0,
    call: ["removeMember", { group: "devs", user: "alice" }],
    out: "removed alice from devs\n",
  },
  { argv: ["group", "list"], exit: 0, out: "GROUP  MEMBERS\ndevs   alice,bob\n" },
  { argv: ["group", "list", "--output", "json"], exit: 0, json: [DEVS] },
  { argv: ["group", "list", "extra"], exit: 2, err: /unexpected argument extra/ },
  // token
  { argv: ["token"], exit: 2, err: /which subcommand/ },
  { argv: ["token", "create"], exit: 2, err: /missing NAME/ },
  {
    argv: [
      "token",
      "create",
      "ci",
      "--scopes",
      "pull,push",
      "--repositories",
      "team/*, other/app",
      "--registry",
      "registry.example.com",
    ],
    exit: 0,
    call: [
      "createAccessToken",
      { name: "ci", scopes: ["pull", "push"], repository_patterns: ["team/*", "other/app"] },
    ],
    out: /secret \(shown only now[\s\S]*regauth_pat_abcdefghijklmnopqrstuvwxyz123456ABCDEF[\s\S]*docker login registry\.example\.com --username alice\n/,
  },
  {
    argv: ["token", "create", "ci"],
    exit: 0,
    call: ["createAccessToken", { name: "ci", scopes: ["pull"], repository_patterns: ["*"] }],
    out: /REGISTRY_HOST/,
  },
  {
    argv: ["token", "create", "ci", "--owner", "bob", "--expires", "30d"],
    exit: 0,
    call: [
      "createAccessToken",
      {
        name: "ci",
        scopes: ["pull"],
        repository_patterns: ["*"],
        expires_at: "2026-12-31T12:00:00Z",
        owner: "bob",
      },
    ],
  },
  { argv: ["token", "create", "ci", "--output", "json"], exit: 0, json: CREATED_TOKEN },
  {
    argv: ["token", "create", "ci", "--scopes", "pull,root"],
    exit: 2,
    err: /"root" is not one of pull, push, delete, api/,
  },
  { argv: ["token", "create", "ci", "--scopes", ","], exit: 2, err: /--scopes needs at least one value/ },
  { argv: ["token", "create", "ci", "--expires", "yesterday"], exit: 2, err: /--expires must be like/ },
  { argv: ["token", "create", "ci", "--expires", "2020-01-01"], exit: 2, err: /in the past/ },
  { argv: ["token", "create", "ci", "--secret", "x"], exit: 2, err: /unknown option --secret/ },
  {
    argv: ["token", "list"],
    exit: 0,
    call: ["listAccessTokens", {}],
    out:
      "ID  OWNER  NAME  SCOPES     REPOSITORIES  CREATED               EXPIRES  LAST USED             FROM\n" +
      "7   alice  ci    pull,push  team/*        2026-12-01T10:00:00Z  never    2026-12-01T12:00:00Z  192.0.2.7\n",
  },
  { argv: ["token", "list", "--owner", "bob"], exit: 0, call: ["listAccessTokens", { owner: "bob" }] },
  { argv: ["token", "list", "--output", "json"], exit: 0, json: [TOKEN] },
  {
    argv: ["token", "revoke", "7"],
    exit: 0,
    call: ["revokeAccessToken", { id: 7 }],
    out: 'revoked token 7 "ci" of alice\n',
  },
  { argv: ["token", "revoke", "7; rm -rf /"], exit: 2, err: /ID must be a token number/ },
  { argv: ["token", "revoke", "0"], exit: 2, err: /ID must be a token number/ },
  { argv: ["token", "revoke", "99999999999999999999"], exit: 2, err: /ID must be a token number/ },
  // robot
  { argv: ["robot"], exit: 2, err: /which subcommand/ },
  {
    argv: ["robot", "create", "ci", "--namespace", "team", "--description", "builds"],
    exit: 0,
    call: ["createRobot", { name: "ci", namespace: "team", description: "builds" }],
    out: /created robot team\+ci/,
  },
  { argv: ["robot", "create", "ci"], exit: 0, call: ["createRobot", { name: "ci" }] },
  {
    argv: ["robot", "list", "--namespace", "team"],
    exit: 0,
    call: ["listRobots", { namespace: "team" }],
    out: /^NAME\s+OWNER\s+STATE.*\nteam\+ci\s+team\s+enabled/,
  },
  { argv: ["robot", "list", "--output", "json"], exit: 0, json: [ROBOT] },
  {
    argv: ["robot", "rm", "team+ci"],
    exit: 0,
    call: ["deleteRobot", { name: "team+ci" }],
    out: /deleted robot team\+ci/,
  },
  {
    argv: ["robot", "token", "create", "team+ci", "push", "--scopes", "push", "--repositories", "team/*"],
    exit: 0,
    call: [
      "createRobotToken",
      { name: "push", scopes: ["push"], repository_patterns: ["team/*"], robot: "team+ci" },
    ],
    out: /--username team\+ci/,
  },
  { argv: ["robot", "token", "create", "team+ci"], exit: 2, err: /missing ROBOT TOKEN_NAME/ },
  { argv: ["robot", "token", "list", "team+ci", "x"], exit: 2, err: /robot token create/ },
  // audit
  {
    argv: ["audit"],
    exit: 0,
    call: ["queryAudit", { since: "2026-12-01T11:00:00.000Z" }, { limit: 500 }],
    out: /^TIME\s+KIND\s+OUTCOME\s+ACTOR\s+REPOSITORY\s+IP\s+DETAILS\n2026-12-01T10:00:00Z\s+token\s+denied\s+alice\s+team\/app\s+192\.0\.2\.7\s+\{"asked":\["push"\],"granted":\[\]\}\n$/,
  },
  {
    argv: [
      "audit",
      "--since",
      "2h",
      "--until",
      "2026-12-01",
      "--actor",
      "alice",
      "--repository",
      "team/app",
      "--kind",
      "token",
      "--limit",
      "5",
    ],
    exit: 0,
    call: [
      "queryAudit",
      {
        since: "2026-12-01T10:00:00.000Z",
        until: "2026-12-01T00:00:00.000Z",
        actor: "alice",
        repository: "team/app",
        kind: "token",
      },
      { limit: 5 },
    ],
  },
  { argv: ["audit", "--output", "json"], exit: 0, json: [EVENT] },
  { argv: ["audit", "--limit", "0"], exit: 2, err: /--limit must be a number from 1 to 100000/ },
  { argv: ["audit", "--limit", "100001"], exit: 2, err: /--limit must be/ },
  { argv: ["audit", "--since", "last tuesday"], exit: 2, err: /--since must be like/ },
  { argv: ["audit", "stray"], exit: 2, err: /unexpected argument stray/ },
  // a terminal is never written control characters from the server
  {
    argv: ["user", "list"],
    answers: { listUsers: { items: [{ ...ALICE, name: "evil\u001b[31m" }], next_cursor: null } },
    exit: 0,
    out: /evil\?\[31m/,
  },
];

describe("management commands over a fake client", () => {
  for (const c of cases) {
    it(`${c.argv.join(" ")} → exit ${c.exit}`, async () => {
      const { client, calls } = fakeClient(c.answers);
      const io = fakeIo(client);
      const exit = await main(c.argv, io);
      expect({ exit, stderr: io.stderr }).toMatchObject({ exit: c.exit });
      if (c.call) expect(calls[0]).toEqual({ method: c.call[0], args: c.call.slice(1) });
      if (typeof c.out === "string") expect(io.stdout).toBe(c.out);
      else if (c.out) expect(io.stdout).toMatch(c.out);
      if (c.err) expect(io.stderr).toMatch(c.err);
      if (c.json !== undefined) expect(JSON.parse(io.stdout)).toEqual(c.json);
      if (c.exit === 2) expect(calls).toEqual([]); // a usage error never reaches the back-end
      expect(io.stderr).not.toMatch(/\n\s+at /);
    });
  }

  it("prints --help for every command, naming the back-end flags", async () => {
    for (const command of ["user", "perm", "group", "token", "robot", "audit", "login", "logout"]) {
      const io = fakeIo(fakeClient().client);
      expect(await main([command, "--help"], io)).toBe(0);
      expect(io.stdout).toContain(`regauth ${command}`);
      if (!["login", "logout"].includes(command)) expect(io.stdout).toContain("--remote URL");
    }
  });

  it("lists every page, following next_cursor", async () => {
    const pages: Record<string, unknown> = {
      "": { items: [ALICE], next_cursor: "c1" },
      c1: { items: [{ ...ALICE, name: "bob" }], next_cursor: null },
    };
    const { client, calls } = fakeClient({
      listUsers: (_filter: unknown, page: { cursor?: string }) => pages[page.cursor ?? ""],
    });
    const io = fakeIo(client);
    expect(await main(["user", "list", "--output", "json"], io)).toBe(0);
    expect((JSON.parse(io.stdout) as { name: string }[]).map((u) => u.name)).toEqual(["alice", "bob"]);
    expect(calls.map((c) => c.args[1])).toEqual([{ limit: 500 }, { limit: 500, cursor: "c1" }]);
  });

  it("audit pages through the log up to --limit and says when it stopped there", async () => {
    const pages: Record<string, unknown> = {
      "": { items: [EVENT, { ...EVENT, id: 4 }], next_cursor: "c4" },
      c4: { items: [{ ...EVENT, id: 5 }], next_cursor: "c5" },
    };
    const { client, calls } = fakeClient({
      queryAudit: (_filter: unknown, page: { cursor?: string }) => pages[page.cursor ?? ""],
    });
    const io = fakeIo(client);
    expect(await main(["audit", "--limit", "3", "--output", "json"], io)).toBe(0);
    expect((JSON.parse(io.stdout) as { id: number }[]).map((e) => e.id)).toEqual([3, 4, 5]);
    expect(calls.map((c) => c.args[1])).toEqual([{ limit: 3 }, { limit: 1, cursor: "c4" }]);
    expect(io.stderr).toContain("stopped at --limit 3");
  });

  it("audit --follow prints new events only, oldest first, polling from the last one", async () => {
    const batches = [
      { items: [EVENT], next_cursor: null },
      {
        items: [
          { ...EVENT, id: 5, at: "2026-12-01T10:00:02Z" },
          { ...EVENT, id: 4, at: "2026-12-01T10:00:01Z" },
          EVENT,
        ],
        next_cursor: null,
      },
      { items: [{ ...EVENT, id: 5, at: "2026-12-01T10:00:02Z" }], next_cursor: null },
    ];
    const { client, calls } = fakeClient({ queryAudit: () => batches.shift() });
    let sleeps = 0;
    const io = fakeIo(client, {
      sleep: async () => {
        if (++sleeps > 2) throw new CommandFailed("stop");
      },
    });
    expect(await main(["audit", "--follow", "--output", "json"], io)).toBe(1);
    expect(
      io.stdout
        .trim()
        .split("\n")
        .map((line) => (JSON.parse(line) as { id: number }).id),
    ).toEqual([3, 4, 5]);
    expect(calls[0]?.args[0]).toEqual({ since: "2026-12-01T11:00:00.000Z" }); // the last hour
    expect(calls[1]?.args[0]).toEqual({ since: "2026-12-01T11:00:00.000Z", after_id: 3 });
    expect(calls[2]?.args[0]).toEqual({ since: "2026-12-01T11:00:00.000Z", after_id: 5 });
  });
});

describe("times on the command line", () => {
  const now = Date.parse("2026-12-01T12:00:00Z");
  const expiries: [string, string | RegExp][] = [
    ["30d", "2026-12-31T12:00:00Z"],
    ["12h", "2026-12-02T00:00:00Z"],
    ["90m", "2026-12-01T13:30:00Z"],
    ["2027-01-31", "2027-01-31T00:00:00Z"],
    ["2027-01-31T12:00:00+02:00", "2027-01-31T10:00:00Z"],
    ["0d", /in the future/],
    ["2026-02-30", /must be like/],
    ["2026-13-01", /must be like/],
    ["1e3d", /must be like/],
    ["-5d", /must be like/],
    ["9999999d", /must be like/],
    ["", /must be like/],
  ];
  for (const [text, expected] of expiries) {
    it(`--expires ${JSON.stringify(text)}`, () => {
      if (typeof expected === "string") expect(parseExpiry(text, now)).toBe(expected);
      else expect(() => parseExpiry(text, now)).toThrow(expected);
    });
  }

  it("--since accepts durations ago and dates, nothing else", () => {
    expect(parseTime("since", "30m", now)).toBe("2026-12-01T11:30:00.000Z");
    expect(parseTime("since", "2026-11-30T23:00:00Z", now)).toBe("2026-11-30T23:00:00.000Z");
    for (const bad of ["now", "30 m", "2026-11-31", "'; DROP TABLE audit_events;--"])
      expect(() => parseTime("since", bad, now)).toThrow(/--since must be like/);
  });
});
