/** A fake ManagementClient and CommandIo for the CLI's unit tests: canned views, recorded calls. */
import type { CommandIo } from "../src/cli/command-io.ts";
import type { ManagementClient } from "../src/cli/management-client.ts";
import type {
  AccessTokenView,
  AuditEventView,
  CreatedAccessTokenView,
  GroupView,
  PermissionView,
  RobotView,
  UserView,
} from "../src/cli/views.ts";

export const ALICE: UserView = {
  name: "alice",
  kind: "person",
  is_admin: false,
  is_enabled: true,
  is_pending_approval: false,
  created_at: "2026-12-01T10:00:00Z",
  last_login_at: null,
};
export const ADMIN: UserView = {
  ...ALICE,
  name: "admin",
  is_admin: true,
  last_login_at: "2026-12-01T11:30:00Z",
};
export const PENDING: UserView = { ...ALICE, name: "carol", is_enabled: false, is_pending_approval: true };
export const DEVS: GroupView = {
  name: "devs",
  members: ["alice", "bob"],
  created_at: "2026-12-01T10:00:00Z",
};
export const GRANT: PermissionView = {
  grantee: "alice",
  pattern: "team/*",
  level: "write",
  created_at: "2026-12-01T10:05:00Z",
};
export const TOKEN: AccessTokenView = {
  id: 7,
  owner: "alice",
  name: "ci",
  scopes: ["pull", "push"],
  repository_patterns: ["team/*"],
  created_at: "2026-12-01T10:00:00Z",
  expires_at: null,
  last_used_at: "2026-12-01T12:00:00Z",
  last_used_ip: "192.0.2.7",
};
export const CREATED_TOKEN: CreatedAccessTokenView = {
  ...TOKEN,
  secret: "regauth_pat_abcdefghijklmnopqrstuvwxyz123456ABCDEF",
};
export const ROBOT: RobotView = {
  name: "team+ci",
  owner_namespace: "team",
  description: "builds",
  is_enabled: true,
  created_at: "2026-12-01T10:00:00Z",
  last_login_at: null,
};
export const EVENT: AuditEventView = {
  id: 3,
  at: "2026-12-01T10:00:00.123Z",
  kind: "token",
  actor: "alice",
  ip: "192.0.2.7",
  repository: "team/app",
  outcome: "denied",
  details: { asked: ["push"], granted: [] },
};

export interface Call {
  method: string;
  args: unknown[];
}

/** Every method records its call and answers from `answers` (a value, or an Error to throw). */
export function fakeClient(answers: Partial<Record<keyof ManagementClient, unknown>> = {}): {
  client: ManagementClient;
  calls: Call[];
} {
  const calls: Call[] = [];
  const defaults: Partial<Record<keyof ManagementClient, unknown>> = {
    listUsers: { items: [ADMIN, ALICE, PENDING], next_cursor: null },
    getUser: ALICE,
    createUser: ALICE,
    setPassword: ALICE,
    updateUser: ALICE,
    deleteUser: ALICE,
    releaseName: { name: "alice", retired_at: "2026-12-01T10:00:00Z" },
    listRetiredNames: [{ name: "bob", retired_at: "2026-12-01T10:00:00Z" }],
    listGroups: { items: [DEVS], next_cursor: null },
    getGroup: DEVS,
    createGroup: { ...DEVS, members: [] },
    deleteGroup: DEVS,
    addMember: DEVS,
    removeMember: DEVS,
    listPermissions: { items: [GRANT], next_cursor: null },
    grant: GRANT,
    revoke: GRANT,
    listAccessTokens: [TOKEN],
    createAccessToken: CREATED_TOKEN,
    revokeAccessToken: TOKEN,
    listRobots: [ROBOT],
    createRobot: ROBOT,
    deleteRobot: ROBOT,
    createRobotToken: { ...CREATED_TOKEN, owner: "team+ci" },
    queryAudit: { items: [EVENT], next_cursor: null },
  };
  const all = { ...defaults, ...answers };
  const client = new Proxy({} as ManagementClient, {
    get(_, property: string) {
      if (property === "description") return "fake";
      if (property === "close") return () => {};
      if (property === "then") return undefined; // not a promise: `await io.client()` yields the proxy
      return async (...args: unknown[]) => {
        calls.push({ method: property, args });
        const answer = all[property as keyof ManagementClient];
        if (answer instanceof Error) throw answer;
        if (typeof answer === "function") return (answer as (...a: unknown[]) => unknown)(...args);
        return structuredClone(answer);
      };
    },
  });
  return { client, calls };
}

export function fakeIo(
  client: ManagementClient,
  options: { secrets?: string[]; nowMs?: number; sleep?: (ms: number) => Promise<void> } = {},
): CommandIo & { stdout: string; stderr: string; secretPrompts: string[] } {
  const io = {
    stdout: "",
    stderr: "",
    secretPrompts: [] as string[],
    client: async () => client,
    out(text: string) {
      io.stdout += text;
    },
    err(text: string) {
      io.stderr += text;
    },
    async readSecrets(_args: unknown, requests: { prompt: string }[]) {
      io.secretPrompts.push(...requests.map((r) => r.prompt));
      return (options.secrets ?? ["secret-password", "new-password"]).slice(0, requests.length);
    },
    nowMs: () => options.nowMs ?? Date.parse("2026-12-01T12:00:00Z"),
    sleep: options.sleep ?? (async () => {}),
  };
  return io;
}
