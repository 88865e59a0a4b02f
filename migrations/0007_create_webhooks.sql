-- Outgoing webhooks (issue 11 item 4; docs/webhooks.md): the webhooks, and their deliveries, which
-- are both the durable queue (status 'pending') and the history (the finished ones, the newest
-- webhooks.history_limit kept per webhook). Times of deliveries are unix milliseconds.
CREATE TABLE webhooks (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  -- May hold user:password for the receiver; shown back with them redacted.
  url TEXT NOT NULL,
  -- JSON array of repository patterns (team/*, team/app, *).
  repository_patterns TEXT NOT NULL,
  -- JSON array of event types (repository.created, tag.pushed, tag.deleted).
  events TEXT NOT NULL,
  is_enabled INTEGER NOT NULL DEFAULT 1 CHECK (is_enabled IN (0, 1)),
  -- Declared in the config (webhooks.declared): synced at start, read-only in the API and CLI.
  is_declared INTEGER NOT NULL DEFAULT 0 CHECK (is_declared IN (0, 1)),
  -- The signing secret is HMAC-SHA256(<data_dir>/webhook-secret.key, nonce): the database alone
  -- (a backup, a stolen file) reveals no secret. NULL for declared webhooks (their secret_file).
  secret_nonce BLOB,
  created_by TEXT NOT NULL,
  created_at_unix INTEGER NOT NULL,
  updated_at_unix INTEGER NOT NULL
) STRICT;

CREATE TABLE webhook_deliveries (
  id INTEGER PRIMARY KEY,
  webhook_id INTEGER NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
  -- The index change's event id (a test: "test-..."; a redelivery: "<event id>#<delivery id>"):
  -- the same change is queued once per webhook, whoever reports it twice.
  event_id TEXT NOT NULL,
  event_type TEXT NOT NULL,
  -- The exact JSON body sent (src/webhooks/payload.ts), the same bytes on every attempt.
  payload TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts INTEGER NOT NULL DEFAULT 0,
  created_at_ms INTEGER NOT NULL,
  -- A pending delivery is due from then on (counted before each attempt, so one in flight at a
  -- crash is retried after it).
  next_attempt_at_ms INTEGER NOT NULL,
  last_attempt_at_ms INTEGER,
  response_status INTEGER,
  latency_ms INTEGER,
  last_error TEXT,
  -- The first few hundred characters of the receiver's answer.
  response_excerpt TEXT,
  -- The delivery this one repeats ("redeliver"), NULL otherwise.
  redelivery_of INTEGER,
  UNIQUE (webhook_id, event_id)
) STRICT;
-- The dispatcher's question: the oldest pending delivery of each webhook.
CREATE INDEX webhook_deliveries_queue ON webhook_deliveries (status, webhook_id, id);
-- The history, newest first, and its pruning.
CREATE INDEX webhook_deliveries_history ON webhook_deliveries (webhook_id, id);
