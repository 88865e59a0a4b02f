/** Config section `audit` (issue 10 item 6; docs/access-tokens.md "Audit log"). */
import { type Static, Type } from "@sinclair/typebox";
import type { AuditOptions } from "./audit-log.ts";

export const AuditConfig = Type.Object(
  {
    enabled: Type.Boolean({ default: true, description: "Record the audit log in the database." }),
    retention_days: Type.Integer({
      minimum: 0,
      maximum: 36_500,
      default: 90,
      description:
        "Events older than this many days are pruned (every 10 minutes); 0 keeps them by count only.",
    }),
    max_events: Type.Integer({
      minimum: 0,
      maximum: 1_000_000_000,
      default: 1_000_000,
      description: "The newest this many events are kept; 0: no bound by count.",
    }),
    token_decisions: Type.Union([Type.Literal("all"), Type.Literal("denied"), Type.Literal("none")], {
      default: "all",
      description:
        "Which token requests are recorded: all; denied (an asked action not granted, or a failed login); none.",
    }),
  },
  { additionalProperties: false, default: {} },
);

export type AuditConfig = Static<typeof AuditConfig>;

export function auditOptions(config: AuditConfig): AuditOptions {
  return { enabled: config.enabled, retentionDays: config.retention_days, maxEvents: config.max_events };
}
