-- The image index (issue 11 item 2; docs/registry-index.md): what the registry holds, kept from its
-- notifications (src/registry-index/) and healed by crawling it (`regauth repo sync`).
-- Times are unix seconds. A deleted tag or repository keeps its row with deleted_at set, so that
-- the index remembers deletions; a later push clears it.
CREATE TABLE repositories (
  id INTEGER PRIMARY KEY,
  -- distribution's repository name (docs/spec/api.md grammar), e.g. "team/app".
  name TEXT NOT NULL UNIQUE,
  first_push_at INTEGER NOT NULL,
  last_push_at INTEGER NOT NULL,
  deleted_at INTEGER
) STRICT;

CREATE TABLE image_tags (
  id INTEGER PRIMARY KEY,
  repository_id INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
  tag TEXT NOT NULL,
  digest TEXT NOT NULL,
  media_type TEXT NOT NULL,
  size_bytes INTEGER NOT NULL,
  -- The event's actor.name (our token's subject); NULL when unknown (found by a crawl, anonymous).
  pushed_by TEXT,
  -- The pushing client's address (the event's request.addr without the port); NULL when unknown.
  pushed_from TEXT,
  first_push_at INTEGER NOT NULL,
  last_push_at INTEGER NOT NULL,
  pull_count INTEGER NOT NULL DEFAULT 0,
  last_pull_at INTEGER,
  deleted_at INTEGER,
  UNIQUE (repository_id, tag)
) STRICT;
CREATE INDEX image_tags_digest ON image_tags (repository_id, digest);

-- Notification event ids already applied: the registry retries a delivery it thinks failed, and
-- a retried event must be applied once (issue 11 item 1). Pruned by age.
CREATE TABLE registry_events_seen (
  event_id TEXT PRIMARY KEY,
  received_at INTEGER NOT NULL
) STRICT;
CREATE INDEX registry_events_seen_received ON registry_events_seen (received_at);
