/**
 * `regauth webhook add|list|show|rm|enable|disable|test|deliveries|redeliver` (issue 11 item 4;
 * docs/webhooks.md), written once over ManagementClient: offline on the data directory or remote
 * through the API. The signing secret is printed once, by add.
 */
import { type ParsedArgs, stringFlag, UsageError } from "./args.ts";
import { expectArgs } from "./accounts-database.ts";
import { BACKEND_HELP } from "./backend.ts";
import type { CommandIo } from "./command-io.ts";
import type { WebhookEvent } from "./management-client.ts";
import { cell, json, outputFormat, shortTime, table } from "./output.ts";
import type { CreatedWebhookView, DeliveryView, WebhookView } from "./views.ts";

const EVENTS: readonly WebhookEvent[] = ["repository.created", "tag.pushed", "tag.deleted"];

export const WEBHOOK_VALUE_FLAGS = ["repositories", "events", "limit"];
export const WEBHOOK_BOOLEAN_FLAGS = ["disabled"];

export const WEBHOOK_USAGE = `regauth webhook SUBCOMMAND [--remote URL | --data-dir DIR | --config FILE] [--output json]

  add NAME URL [--repositories LIST] [--events LIST] [--disabled]
                          create a webhook; its signing secret is printed once
  list                    the webhooks you may manage
  show WEBHOOK            one webhook (WEBHOOK: its name or id)
  rm WEBHOOK              delete it with its queue and history
  enable WEBHOOK | disable WEBHOOK
  rotate-secret WEBHOOK   a new signing secret, printed once; the old one stops at once
  test WEBHOOK            queue a test event (type webhook.test); see deliveries for the outcome
  deliveries WEBHOOK [--limit N]
                          its deliveries, newest first: status, attempts, response, error
  redeliver DELIVERY_ID   send a past delivery again, behind the pending ones

Options of add:
  --repositories LIST  comma-separated repository patterns (team/*, team/app, *); default *
  --events LIST        comma-separated: repository.created, tag.pushed, tag.deleted; default all
  --disabled           create it disabled

Deliveries are POSTs signed with HMAC-SHA256 (X-Regauth-Signature: t=...,v1=...): docs/webhooks.md.
Webhooks declared in the config are shown here and changed only there.
Exit codes: 0 ok, 1 failed, 2 usage.

${BACKEND_HELP}`;

function list(text: string, what: string): string[] {
  const items = text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (items.length === 0) throw new UsageError(`${what} needs at least one value`);
  return [...new Set(items)];
}

function events(text: string | undefined): WebhookEvent[] | undefined {
  if (text === undefined) return undefined;
  const items = list(text, "--events");
  for (const item of items)
    if (!(EVENTS as readonly string[]).includes(item))
      throw new UsageError(`--events: ${JSON.stringify(item)} is not one of ${EVENTS.join(", ")}`);
  return items as WebhookEvent[];
}

export function webhookTable(webhooks: WebhookView[]): string {
  return table(
    ["ID", "NAME", "STATE", "URL", "REPOSITORIES", "EVENTS", "BY"],
    webhooks.map((w) => [
      String(w.id),
      cell(w.name),
      w.declared ? `${w.state} (config)` : w.state,
      cell(w.url),
      cell(w.repository_patterns.join(",")),
      w.events.join(","),
      cell(w.created_by),
    ]),
  );
}

export function deliveryTable(deliveries: DeliveryView[]): string {
  return table(
    ["ID", "CREATED", "TYPE", "EVENT", "STATUS", "ATTEMPTS", "CODE", "MS", "ERROR / ANSWER"],
    deliveries.map((d) => [
      String(d.id),
      shortTime(d.created_at),
      d.type,
      cell(d.event_id).slice(0, 40),
      d.status === "pending" && d.next_attempt_at !== null
        ? `pending (next ${shortTime(d.next_attempt_at)})`
        : d.status,
      String(d.attempts),
      d.response_status === null ? "-" : String(d.response_status),
      d.latency_ms === null ? "-" : String(d.latency_ms),
      cell(d.last_error ?? d.response_excerpt ?? "").slice(0, 60) || "-",
    ]),
  );
}

function showText(w: WebhookView): string {
  return (
    `${w.name} (id ${w.id}): ${w.state}${w.declared ? ", declared in the config" : ""}\n` +
    `  url           ${cell(w.url)}\n` +
    `  repositories  ${cell(w.repository_patterns.join(", "))}\n` +
    `  events        ${w.events.join(", ")}\n` +
    `  created       ${shortTime(w.created_at)} by ${cell(w.created_by)}\n` +
    `  updated       ${shortTime(w.updated_at)}\n`
  );
}

export function createdWebhookText(w: CreatedWebhookView): string {
  return (
    `created webhook ${w.id} ${JSON.stringify(w.name)}: ${w.events.join(",")} on ${w.repository_patterns.join(",")} to ${cell(w.url)}\n\n` +
    `signing secret (shown only now; give it to the receiver to verify X-Regauth-Signature):\n\n  ${w.secret}\n\n` +
    `send a test event: regauth webhook test ${w.name}\n`
  );
}

function parseDeliveryId(text: string): number {
  if (!/^[1-9]\d{0,15}$/.test(text))
    throw new UsageError(
      `DELIVERY_ID must be a number (regauth webhook deliveries), not ${JSON.stringify(text)}`,
    );
  return Number(text);
}

export async function webhookCommand(args: ParsedArgs, io: CommandIo): Promise<number> {
  const sub = args.positionals[0];
  if (sub === undefined)
    throw new UsageError(
      "which subcommand? add, list, show, rm, enable, disable, rotate-secret, test, deliveries or redeliver",
    );
  const format = outputFormat(args);
  const print = (value: unknown, text: string) => io.out(format === "json" ? json(value) : text);
  switch (sub) {
    case "add": {
      const [name, url] = expectArgs(args, ["NAME", "URL"]) as [string, string];
      const chosen = events(stringFlag(args, "events"));
      const created = await (await io.client(args)).createWebhook({
        name,
        url,
        repository_patterns: list(stringFlag(args, "repositories") ?? "*", "--repositories"),
        ...(chosen ? { events: chosen } : {}),
        ...(args.flags.has("disabled") ? { enabled: false } : {}),
      });
      print(created, createdWebhookText(created));
      return 0;
    }
    case "list": {
      expectArgs(args, []);
      const webhooks = await (await io.client(args)).listWebhooks();
      print(webhooks, webhookTable(webhooks));
      return 0;
    }
    case "show": {
      const [webhook] = expectArgs(args, ["WEBHOOK"]) as [string];
      const found = await (await io.client(args)).getWebhook({ webhook });
      print(found, showText(found));
      return 0;
    }
    case "rm": {
      const [webhook] = expectArgs(args, ["WEBHOOK"]) as [string];
      const deleted = await (await io.client(args)).deleteWebhook({ webhook });
      print(deleted, `deleted webhook ${deleted.name} with its queue and history\n`);
      return 0;
    }
    case "enable":
    case "disable": {
      const [webhook] = expectArgs(args, ["WEBHOOK"]) as [string];
      const updated = await (await io.client(args)).updateWebhook({ webhook, enabled: sub === "enable" });
      print(updated, `${updated.name} is ${updated.state}\n`);
      return 0;
    }
    case "rotate-secret": {
      const [webhook] = expectArgs(args, ["WEBHOOK"]) as [string];
      const rotated = await (await io.client(args)).rotateWebhookSecret({ webhook });
      print(
        rotated,
        `new signing secret of ${rotated.name} (shown only now; the old one no longer verifies):\n\n  ${rotated.secret}\n`,
      );
      return 0;
    }
    case "test": {
      const [webhook] = expectArgs(args, ["WEBHOOK"]) as [string];
      const delivery = await (await io.client(args)).testWebhook({ webhook });
      print(
        delivery,
        `queued test delivery ${delivery.id} to ${delivery.webhook}; see regauth webhook deliveries ${delivery.webhook}\n`,
      );
      return 0;
    }
    case "deliveries": {
      const [webhook] = expectArgs(args, ["WEBHOOK"]) as [string];
      const limitText = stringFlag(args, "limit") ?? "20";
      if (!/^[1-9]\d{0,2}$/.test(limitText) || Number(limitText) > 500)
        throw new UsageError("--limit must be a number from 1 to 500");
      const page = await (await io.client(args)).listDeliveries({ webhook }, { limit: Number(limitText) });
      print(page.items, deliveryTable(page.items));
      return 0;
    }
    case "redeliver": {
      const [idText] = expectArgs(args, ["DELIVERY_ID"]) as [string];
      const delivery = await (await io.client(args)).redeliver({ id: parseDeliveryId(idText) });
      print(delivery, `queued delivery ${delivery.id}, again ${delivery.event_id}, to ${delivery.webhook}\n`);
      return 0;
    }
    default:
      throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}`);
  }
}
