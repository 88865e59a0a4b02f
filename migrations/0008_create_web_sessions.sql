-- Sessions of the web interface (issue 14; docs/web.md "Security model"). The session id lives
-- only in the browser's cookie; this table keeps its SHA-256, so a copy of the database signs
-- nobody in. A session of a database account ends with the account (ON DELETE CASCADE) and when
-- its credential_epoch moves (password change, disable: src/accounts/users.ts).
CREATE TABLE web_sessions (
  -- Hex SHA-256 of the session id.
  id_hash TEXT PRIMARY KEY,
  account TEXT NOT NULL,
  -- The authenticator that signed the account in ("database", "users", "ldap_auth", ...).
  authenticator TEXT NOT NULL,
  -- The database account, or NULL for an account of another back-end (config users, LDAP).
  user_id INTEGER REFERENCES users (id) ON DELETE CASCADE,
  -- users.credential_epoch at sign-in; a session whose epoch differs from the row's has ended.
  credential_epoch INTEGER NOT NULL,
  created_at_unix INTEGER NOT NULL,
  last_seen_at_unix INTEGER NOT NULL,
  ip TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX web_sessions_user ON web_sessions (user_id);
CREATE INDEX web_sessions_last_seen ON web_sessions (last_seen_at_unix);
