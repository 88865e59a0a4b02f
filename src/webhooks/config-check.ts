/**
 * The checks of the `webhooks` section that its schema cannot make, reported with every other
 * config problem at load (src/config/load.ts): CIDRs of allow_private_networks, the declared
 * webhooks' URLs (the same URL policy as the API's), names, patterns and secret files.
 */
import type { ConfigProblem } from "../errors.ts";
import { checkPattern } from "../accounts/permissions.ts";
import type { WebhooksConfig } from "./config-schema.ts";
import { readDeclaredSecret } from "./secrets.ts";
import { checkWebhookUrl } from "./url-policy.ts";
import type { IpRange } from "../ip.ts";
import { parseIpRange } from "../ip.ts";

export function webhookConfigProblems(config: WebhooksConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const allowed: IpRange[] = [];
  config.allow_private_networks.forEach((cidr, i) => {
    const range = parseIpRange(cidr);
    if (range) allowed.push(range);
    else
      problems.push({
        path: `webhooks.allow_private_networks.${i}`,
        message: `${JSON.stringify(cidr)} is not an address or CIDR (e.g. 10.0.0.0/8)`,
      });
  });
  if (config.retry_base_seconds > config.retry_max_seconds)
    problems.push({ path: "webhooks.retry_base_seconds", message: "must not exceed retry_max_seconds" });
  if (config.declared.length > config.max_webhooks)
    problems.push({
      path: "webhooks.declared",
      message: `${config.declared.length} webhooks declared, more than webhooks.max_webhooks (${config.max_webhooks})`,
    });
  const names = new Set<string>();
  config.declared.forEach((declared, i) => {
    const path = `webhooks.declared.${i}`;
    if (names.has(declared.name))
      problems.push({ path: `${path}.name`, message: `${declared.name} is declared twice` });
    names.add(declared.name);
    const check = checkWebhookUrl(declared.url, allowed);
    if (!check.ok) problems.push({ path: `${path}.url`, message: check.reason });
    declared.repositories.forEach((pattern, j) => {
      try {
        checkPattern(pattern);
      } catch (error) {
        problems.push({ path: `${path}.repositories.${j}`, message: (error as Error).message });
      }
    });
    try {
      readDeclaredSecret(declared.secret_file);
    } catch (error) {
      problems.push({ path: `${path}.secret_file`, message: (error as Error).message });
    }
  });
  return problems;
}
