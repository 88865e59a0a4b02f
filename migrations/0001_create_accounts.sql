-- Accounts, groups and permissions (issue 3). Times are unix seconds, UTC.

CREATE TABLE users (
  id INTEGER PRIMARY KEY,
  -- Registry-compatible account name, validated by src/accounts/users.ts before it gets here.
  name TEXT NOT NULL UNIQUE,
  -- argon2id (new accounts) or bcrypt ($2a$/$2b$/$2y$, imported); never a plain password.
  password_hash TEXT NOT NULL,
  is_admin INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
  -- 0 while a registration awaits approval, or after `regauth user disable`.
  is_enabled INTEGER NOT NULL DEFAULT 1 CHECK (is_enabled IN (0, 1)),
  created_at_unix INTEGER NOT NULL,
  -- 0 means never; updated at most once a minute per user (src/authn/database-users.ts).
  last_login_at_unix INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE groups (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  created_at_unix INTEGER NOT NULL
) STRICT;

CREATE TABLE group_members (
  group_id INTEGER NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
  user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  PRIMARY KEY (group_id, user_id)
) STRICT;

CREATE INDEX group_members_user ON group_members (user_id);

CREATE TABLE permissions (
  id INTEGER PRIMARY KEY,
  -- The grantee: a user, or a group, or neither, which means everyone including anonymous
  -- clients (a public namespace or repository; read only, see the CHECK below).
  user_id INTEGER REFERENCES users (id) ON DELETE CASCADE,
  group_id INTEGER REFERENCES groups (id) ON DELETE CASCADE,
  -- "team/app" (one repository), "team/*" (everything under team/, nested too) or "*" (all).
  pattern TEXT NOT NULL,
  -- read = pull; write = pull, push; admin = pull, push, delete.
  level TEXT NOT NULL CHECK (level IN ('read', 'write', 'admin')),
  created_at_unix INTEGER NOT NULL,
  CHECK (user_id IS NULL OR group_id IS NULL),
  CHECK (user_id IS NOT NULL OR group_id IS NOT NULL OR level = 'read')
) STRICT;

-- One grant per grantee and pattern: granting again changes the level.
CREATE UNIQUE INDEX permissions_grantee_pattern ON permissions (ifnull(user_id, 0), ifnull(group_id, 0), pattern);
CREATE INDEX permissions_group ON permissions (group_id);
