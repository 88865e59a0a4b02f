/**
 * ManagementClient over the REST API (issue 10 design §4): fetch to `${url}/api/v1/...` with the
 * stored `api` token as a Bearer credential. Every failure becomes one CommandFailed line: the
 * server's own message from the error envelope `{errors:[{code,message}]}`, or why it could not
 * be reached. Plain http is refused except to loopback (the token would cross the network in
 * the clear) unless the user says --insecure.
 */
import { declaredLengthExceeds, readAtMost } from "../streams/read-at-most.ts";
import { isIP } from "node:net";
import { CommandFailed } from "./args.ts";
import type {
  AuditFilter,
  ManagementClient,
  NewTokenInput,
  NewWebhookInput,
  WebhookChanges,
  PageRequest,
  PermissionFilter,
  UserFilter,
} from "./management-client.ts";
import type {
  AccessTokenView,
  AuditEventView,
  CreatedAccessTokenView,
  GroupView,
  Level,
  MeView,
  Page,
  PermissionView,
  RepositoryDetailView,
  RepositoryView,
  RetiredNameView,
  RobotView,
  SyncReportView,
  TagView,
  UserView,
  CreatedWebhookView,
  DeliveryView,
  WebhookView,
} from "./views.ts";

export const REQUEST_TIMEOUT_MS = 15_000;
/** A management answer is small; a bigger one is not our server. */
export const MAX_RESPONSE_BYTES = 32 * 1024 * 1024;

export type RemoteAuth =
  | { kind: "bearer"; token: string }
  | { kind: "basic"; username: string; password: string };

/** Loopback hosts, where plain http never leaves the machine. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  if (host === "localhost" || host.endsWith(".localhost")) return true;
  if (isIP(host) === 4) return host.startsWith("127.");
  if (isIP(host) === 6) return host === "::1" || /^::ffff:127\./.test(host);
  return false;
}

/** The server's base URL, checked: http(s) only, no credentials or query in it, https off loopback. */
export function parseServerUrl(text: string, options: { insecure: boolean }): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new CommandFailed(`${JSON.stringify(text)} is not a URL (e.g. https://auth.example.com)`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:")
    throw new CommandFailed(`the server URL must start with https:// (got ${url.protocol}//)`);
  if (url.username !== "" || url.password !== "")
    throw new CommandFailed("the server URL must not contain a user name or password");
  if (url.search !== "" || url.hash !== "") throw new CommandFailed("the server URL must not have a query");
  if (url.protocol === "http:" && !isLoopbackHost(url.hostname) && !options.insecure)
    throw new CommandFailed(
      `refusing plain http to ${url.host}: the token would cross the network unencrypted; ` +
        "use https://, or --insecure if you really mean it",
    );
  url.pathname = url.pathname.replace(/\/+$/, "");
  return url;
}

function enc(value: string): string {
  return encodeURIComponent(value);
}

function query(params: Record<string, string | number | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== undefined) search.set(key, String(value));
  const text = search.toString();
  return text === "" ? "" : `?${text}`;
}

/** Lists may come as a Page or as a bare array; the CLI treats both as a Page. */
function asPage<T>(body: unknown): Page<T> {
  if (Array.isArray(body)) return { items: body as T[], next_cursor: null };
  const page = body as Partial<Page<T>> | null;
  if (page && Array.isArray(page.items))
    return { items: page.items, next_cursor: typeof page.next_cursor === "string" ? page.next_cursor : null };
  throw new CommandFailed("the server's answer is not a list (is this a regauth server?)");
}

/** A request the server refused (status) or that never got an answer (status null). */
export class RemoteFailure extends CommandFailed {
  constructor(
    message: string,
    readonly status: number | null,
  ) {
    super(message);
  }
}

export class RemoteClient implements ManagementClient {
  readonly description: string;

  constructor(
    private readonly baseUrl: URL,
    private readonly auth: RemoteAuth,
    private readonly fetchImpl: typeof fetch = fetch,
    private readonly timeoutMs = REQUEST_TIMEOUT_MS,
  ) {
    this.description = baseUrl.href.replace(/\/$/, "");
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const url = `${this.description}/api/v1${path}`;
    const headers: Record<string, string> = { accept: "application/json" };
    headers.authorization =
      this.auth.kind === "bearer"
        ? `Bearer ${this.auth.token}`
        : `Basic ${Buffer.from(`${this.auth.username}:${this.auth.password}`).toString("base64")}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    let response: Response;
    try {
      response = await this.fetchImpl(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
        redirect: "manual", // a redirect would carry the token elsewhere
      });
    } catch (error) {
      const reason =
        (error as Error).name === "TimeoutError"
          ? `no answer within ${this.timeoutMs / 1000} s`
          : (error as Error).message;
      throw new RemoteFailure(`cannot reach ${this.description}: ${reason}`, null);
    }
    const text = await readLimited(response);
    let parsed: unknown;
    try {
      parsed = text === "" ? null : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (!response.ok) throw new RemoteFailure(this.failure(response.status, parsed), response.status);
    if (parsed === undefined)
      throw new CommandFailed(
        `${this.description} answered ${response.status} with something that is not JSON`,
      );
    return parsed as T;
  }

  private failure(status: number, body: unknown): string {
    const first = (body as { errors?: { code?: unknown; message?: unknown }[] } | null)?.errors?.[0];
    const message = typeof first?.message === "string" ? first.message.replace(/[\r\n]+/g, " ") : null;
    if (status === 401)
      return this.auth.kind === "bearer"
        ? `${this.description} refused the stored token (${message ?? "unauthorized"}); it may be revoked or expired: run regauth login ${this.description}`
        : `${this.description} refused the user name or password (${message ?? "unauthorized"})`;
    if (status >= 300 && status < 400)
      return `${this.description} answered with a redirect (${status}); use the final URL`;
    if (message !== null) return message;
    if (status === 404) return `${this.description} has no management API (is it regauth, with api.enabled?)`;
    return `${this.description} answered ${status}`;
  }

  me() {
    return this.request<MeView>("GET", "/me");
  }
  async listUsers(filter: UserFilter, page: PageRequest) {
    return asPage<UserView>(await this.request("GET", `/users${query({ ...filter, ...page })}`));
  }
  getUser(input: { name: string }) {
    return this.request<UserView>("GET", `/users/${enc(input.name)}`);
  }
  createUser(input: { name: string; password: string; admin?: boolean; disabled?: boolean }) {
    return this.request<UserView>("POST", "/users", input);
  }
  setPassword(input: { name: string; password: string; current_password?: string }) {
    const { name, ...body } = input;
    return this.request<UserView>("PUT", `/users/${enc(name)}/password`, body);
  }
  updateUser(input: { name: string; enabled?: boolean; admin?: boolean }) {
    const { name, ...body } = input;
    return this.request<UserView>("PATCH", `/users/${enc(name)}`, body);
  }
  deleteUser(input: { name: string }) {
    return this.request<UserView>("DELETE", `/users/${enc(input.name)}`);
  }
  releaseName(input: { name: string }) {
    return this.request<RetiredNameView>("DELETE", `/retired-names/${enc(input.name)}`);
  }
  listRetiredNames(): Promise<RetiredNameView[]> {
    return Promise.reject(
      new CommandFailed(
        "listing retired names is not supported remotely yet; run it on the server with --data-dir",
      ),
    );
  }
  async listGroups(page: PageRequest) {
    return asPage<GroupView>(await this.request("GET", `/groups${query({ ...page })}`));
  }
  getGroup(input: { name: string }) {
    return this.request<GroupView>("GET", `/groups/${enc(input.name)}`);
  }
  createGroup(input: { name: string }) {
    return this.request<GroupView>("POST", "/groups", input);
  }
  deleteGroup(input: { name: string }) {
    return this.request<GroupView>("DELETE", `/groups/${enc(input.name)}`);
  }
  addMember(input: { group: string; user: string }) {
    return this.request<GroupView>("PUT", `/groups/${enc(input.group)}/members/${enc(input.user)}`);
  }
  removeMember(input: { group: string; user: string }) {
    return this.request<GroupView>("DELETE", `/groups/${enc(input.group)}/members/${enc(input.user)}`);
  }
  async listPermissions(filter: PermissionFilter, page: PageRequest) {
    return asPage<PermissionView>(await this.request("GET", `/permissions${query({ ...filter, ...page })}`));
  }
  grant(input: { grantee: string; pattern: string; level: Level }) {
    return this.request<PermissionView>("POST", "/permissions", input);
  }
  revoke(input: { grantee: string; pattern: string }) {
    return this.request<PermissionView>("DELETE", `/permissions${query(input)}`);
  }
  async listAccessTokens(filter: { owner?: string }) {
    return (await allOf<AccessTokenView>(this, `/tokens`, filter)).items;
  }
  createAccessToken(input: NewTokenInput & { owner?: string }) {
    return this.request<CreatedAccessTokenView>("POST", "/tokens", input);
  }
  revokeAccessToken(input: { id: number }) {
    return this.request<AccessTokenView>("DELETE", `/tokens/${input.id}`);
  }
  async listRobots(filter: { namespace?: string }) {
    return (await allOf<RobotView>(this, `/robots`, filter)).items;
  }
  createRobot(input: { namespace?: string; name: string; description?: string }) {
    return this.request<RobotView>("POST", "/robots", input);
  }
  deleteRobot(input: { name: string }) {
    return this.request<RobotView>("DELETE", `/robots/${enc(input.name)}`);
  }
  createRobotToken(input: NewTokenInput & { robot: string }) {
    const { robot, ...body } = input;
    return this.request<CreatedAccessTokenView>("POST", `/robots/${enc(robot)}/tokens`, body);
  }
  async queryAudit(filter: AuditFilter, page: PageRequest) {
    return asPage<AuditEventView>(await this.request("GET", `/audit${query({ ...filter, ...page })}`));
  }
  async listWebhooks() {
    return (await allOf<WebhookView>(this, "/webhooks", {})).items;
  }
  getWebhook(input: { webhook: string }) {
    return this.request<WebhookView>("GET", `/webhooks/${enc(input.webhook)}`);
  }
  createWebhook(input: NewWebhookInput) {
    return this.request<CreatedWebhookView>("POST", "/webhooks", input);
  }
  updateWebhook(input: WebhookChanges & { webhook: string }) {
    const { webhook, ...body } = input;
    return this.request<WebhookView>("PATCH", `/webhooks/${enc(webhook)}`, body);
  }
  deleteWebhook(input: { webhook: string }) {
    return this.request<WebhookView>("DELETE", `/webhooks/${enc(input.webhook)}`);
  }
  rotateWebhookSecret(input: { webhook: string }) {
    return this.request<CreatedWebhookView>("POST", `/webhooks/${enc(input.webhook)}/secret`, {});
  }
  testWebhook(input: { webhook: string }) {
    return this.request<DeliveryView>("POST", `/webhooks/${enc(input.webhook)}/test`, {});
  }
  async listDeliveries(input: { webhook: string }, page: PageRequest) {
    return asPage<DeliveryView>(
      await this.request("GET", `/webhooks/${enc(input.webhook)}/deliveries${query({ ...page })}`),
    );
  }
  redeliver(input: { id: number }) {
    return this.request<DeliveryView>("POST", `/deliveries/${input.id}/redeliver`, {});
  }
  // A repository name is one path segment: its slashes go as %2F (encodeURIComponent).
  async listRepositories(filter: { pattern?: string }, page: PageRequest) {
    return asPage<RepositoryView>(await this.request("GET", `/repositories${query({ ...filter, ...page })}`));
  }
  getRepository(input: { name: string }) {
    return this.request<RepositoryDetailView>("GET", `/repositories/${enc(input.name)}`);
  }
  async listTags(input: { name: string }, page: PageRequest) {
    return asPage<TagView>(
      await this.request("GET", `/repositories/${enc(input.name)}/tags${query({ ...page })}`),
    );
  }
  getTag(input: { name: string; tag: string }) {
    return this.request<TagView>("GET", `/repositories/${enc(input.name)}/tags/${enc(input.tag)}`);
  }
  syncRepositories() {
    return this.request<SyncReportView>("POST", "/repositories/sync", {});
  }
  close(): void {}
}

/** Every page of a list route whose operation has no page argument. */
async function allOf<T>(
  client: RemoteClient,
  path: string,
  filter: Record<string, string | undefined>,
): Promise<Page<T>> {
  const items: T[] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = asPage<T>(await client.request("GET", `${path}${query({ ...filter, cursor })}`));
    items.push(...page.items);
    if (page.next_cursor === null || page.next_cursor === cursor) return { items, next_cursor: null };
    cursor = page.next_cursor;
  }
}

async function readLimited(response: Response): Promise<string> {
  const tooLarge = () =>
    new CommandFailed(`the server's answer is too large (over ${MAX_RESPONSE_BYTES} bytes)`);
  if (declaredLengthExceeds(response.headers, MAX_RESPONSE_BYTES)) throw tooLarge();
  return (await readAtMost(response.body, MAX_RESPONSE_BYTES, tooLarge)).toString("utf8");
}
