/**
 * The webhooks feature as serve and the CLI use it, built from the `webhooks` config section:
 * what the management operations need (WebhookServices), the sink the index calls, the
 * dispatcher serve starts, and the sync of the config's declared webhooks.
 */
import type { Database } from "bun:sqlite";
import type { Config } from "../config/schema.ts";
import type { IpRange } from "../ip.ts";
import type { IndexChangeSink } from "../registry-index/changes.ts";
import type { WebhooksConfig } from "./config-schema.ts";
import { WebhookDispatcher } from "./dispatcher.ts";
import { ensureWebhookKey, readDeclaredSecret, type WebhookKey } from "./secrets.ts";
import { WebhookCache, webhookSink } from "./sink.ts";
import {
  deleteFinished,
  deleteWebhook,
  findWebhook,
  insertWebhook,
  listWebhooks,
  updateWebhook,
  type Webhook,
} from "./store.ts";
import { checkWebhookUrl, parseAllowedNetworks } from "./url-policy.ts";
import { WEBHOOK_USER_AGENT } from "./user-agent.ts";

/** What the management operations (src/management/webhooks.ts) need besides the database. */
export interface WebhookServices {
  /** webhooks.enabled */
  enabled: boolean;
  keepHistory: boolean;
  historyLimit: number;
  /** webhooks.max_pending */
  maxPending: number;
  /** webhooks.max_webhooks */
  maxWebhooks: number;
  allowed: readonly IpRange[];
  registryHost: string | null;
  /**
   * The key that derives the secrets of webhooks made through the API or CLI, read (or created)
   * on first use, so a data directory without webhooks gets no key file; null when this command
   * may not create it (a read-only CLI command).
   */
  key: (() => WebhookKey) | null;
  /** A webhook was created, changed or deleted, or a delivery queued: caches and the dispatcher follow. */
  changed(): void;
}

export interface WebhookSettings {
  config: WebhooksConfig;
  /** The pull command's host (src/registry-index/config-schema.ts registryHostOf); null: no pull command. */
  registryHost: string | null;
}

/** The webhooks section as it applies: notifications.enabled false turns webhooks off too (issue 11 item 6). */
export function effectiveWebhooksConfig(config: Config): WebhooksConfig {
  return { ...config.webhooks, enabled: config.webhooks.enabled && config.notifications.enabled };
}

export function webhookServices(
  settings: WebhookSettings,
  key: (() => WebhookKey) | null,
  changed: () => void = () => {},
): WebhookServices {
  const { config } = settings;
  return {
    enabled: config.enabled,
    keepHistory: config.history,
    historyLimit: config.history_limit,
    maxPending: config.max_pending,
    maxWebhooks: config.max_webhooks,
    allowed: parseAllowedNetworks(config.allow_private_networks),
    registryHost: settings.registryHost,
    key,
    changed,
  };
}

export interface Webhooks {
  services: WebhookServices;
  /** For the index (src/registry-index/): call it inside the write transaction with the changes. */
  sink: IndexChangeSink;
  dispatcher: WebhookDispatcher;
}

export interface WebhookRuntimeOptions {
  /** Test knobs; serve uses the defaults. */
  dispatcher?: Partial<ConstructorParameters<typeof WebhookDispatcher>[1]>;
}

/**
 * Builds the feature for serve: syncs the declared webhooks into the table (throws, naming the
 * key, when one is invalid), and returns the sink and a dispatcher that is not started yet.
 */
export function createWebhooks(
  db: Database,
  settings: WebhookSettings,
  key: () => WebhookKey,
  options: WebhookRuntimeOptions = {},
): Webhooks {
  const { config } = settings;
  const cache = new WebhookCache();
  const declaredSecrets = syncDeclared(db, config, Math.floor(Date.now() / 1000));
  // history: false from now on: what was kept before goes too.
  if (!config.history) deleteFinished(db);
  let dispatcher: WebhookDispatcher | null = null;
  const changed = () => {
    cache.invalidate();
    dispatcher?.wake();
  };
  const services = webhookServices(settings, key, changed);
  dispatcher = new WebhookDispatcher(db, {
    timeoutMs: config.timeout_seconds * 1000,
    maxAttempts: config.max_attempts,
    backoff: { baseMs: config.retry_base_seconds * 1000, maxMs: config.retry_max_seconds * 1000 },
    keepHistory: config.history,
    historyLimit: config.history_limit,
    maxPending: config.max_pending,
    allowed: services.allowed,
    userAgent: WEBHOOK_USER_AGENT,
    secretOf: (webhook: Webhook) =>
      webhook.isDeclared
        ? (declaredSecrets.get(webhook.name) ?? null)
        : webhook.secretNonce
          ? key().secretFor(webhook.secretNonce)
          : null,
    ...options.dispatcher,
  });
  const sink = webhookSink({
    enabled: config.enabled,
    registryHost: services.registryHost,
    cache,
    queued: () => dispatcher?.wake(),
  });
  return { services, sink, dispatcher };
}

/**
 * Makes the table's declared webhooks what the config declares: adds, updates, and deletes
 * those no longer declared. A name taken by a webhook made through the API is an error (the
 * config must not silently take it over). Returns each declared webhook's secret by name.
 */
export function syncDeclared(db: Database, config: WebhooksConfig, nowUnix: number): Map<string, string> {
  const secrets = new Map<string, string>();
  const allowed = parseAllowedNetworks(config.allow_private_networks);
  config.declared.forEach((declared, i) => {
    const where = `webhooks.declared.${i}`;
    const check = checkWebhookUrl(declared.url, allowed);
    if (!check.ok) throw new Error(`${where}.url: ${check.reason}`);
    if (secrets.has(declared.name)) throw new Error(`${where}.name: ${declared.name} is declared twice`);
    try {
      secrets.set(declared.name, readDeclaredSecret(declared.secret_file));
    } catch (error) {
      throw new Error(`${where}.secret_file: ${(error as Error).message}`);
    }
  });
  db.transaction(() => {
    for (const declared of config.declared) {
      const existing = findWebhook(db, declared.name);
      const fields = {
        url: declared.url,
        repositoryPatterns: [...new Set(declared.repositories)],
        events: [...new Set(declared.events)],
      };
      if (existing && !existing.isDeclared)
        throw new Error(
          `webhooks.declared: a webhook named ${declared.name} was created through the API or CLI; rename one of them`,
        );
      if (existing) updateWebhook(db, existing.id, { ...fields, isEnabled: true }, nowUnix);
      else
        insertWebhook(db, {
          name: declared.name,
          ...fields,
          isEnabled: true,
          isDeclared: true,
          secretNonce: null,
          createdBy: "config",
          nowUnix,
        });
    }
    for (const webhook of listWebhooks(db))
      if (webhook.isDeclared && !secrets.has(webhook.name)) deleteWebhook(db, webhook.id);
    // IMMEDIATE: it reads, then writes; every worker runs it at its start (issue 17) while others
    // write, and a deferred transaction whose snapshot went stale fails (SQLITE_BUSY) instead of waiting.
  }).immediate();
  return secrets;
}

/** ensureWebhookKey(dataDir) on first call, the same key after. */
export function lazyWebhookKey(dataDir: string): () => WebhookKey {
  let key: WebhookKey | null = null;
  return () => {
    key ??= ensureWebhookKey(dataDir);
    return key;
  };
}
