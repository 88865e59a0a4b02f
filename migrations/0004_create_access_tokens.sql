-- Access tokens and robot accounts (issue 10 items 3 and 4; docs/access-tokens.md).
-- Robot accounts are users rows: no password ('!', which never verifies), only tokens.
ALTER TABLE users ADD COLUMN kind TEXT NOT NULL DEFAULT 'person' CHECK (kind IN ('person', 'robot'));
-- For robots: the namespace that owns it ("team"), or NULL when the registry (administrators) owns it.
ALTER TABLE users ADD COLUMN owner_namespace TEXT;
ALTER TABLE users ADD COLUMN description TEXT NOT NULL DEFAULT '';

CREATE TABLE access_tokens (
  id INTEGER PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  -- e.g. "ci", "regauth-cli@laptop"; unique per owner.
  name TEXT NOT NULL,
  -- JSON array, the closure of a subset of ["pull","push","delete","api"] (push implies pull, ...).
  scopes TEXT NOT NULL,
  -- JSON array of permission patterns ("team/*", "*", "a/b"), 1 to 32 of them.
  repository_patterns TEXT NOT NULL,
  -- HMAC-SHA256 of the secret under <data_dir>/access-token.key; the secret itself is never stored.
  secret_hmac BLOB NOT NULL UNIQUE,
  created_at_unix INTEGER NOT NULL,
  -- NULL: never expires.
  expires_at_unix INTEGER,
  -- 0 means never; written at most once a minute per token, in the background.
  last_used_at_unix INTEGER NOT NULL DEFAULT 0,
  last_used_ip TEXT NOT NULL DEFAULT '',
  UNIQUE (user_id, name)
) STRICT;
