-- Names of deleted users stay reserved (issue 8 M1): whoever registered "dave" after dave was
-- deleted would own dave/* and every image the old account left there. A name leaves this table
-- only by `regauth user release NAME`. Written in the same transaction as the DELETE.
CREATE TABLE retired_names (
  name TEXT PRIMARY KEY,
  retired_at_unix INTEGER NOT NULL
) STRICT;

-- Bumped on disable, password change and reset, and part of every refresh token's `cred` MAC
-- (src/token/refresh-token.ts): disabling an account revokes its refresh tokens for good, also
-- after it is enabled again (issue 8). A deleted account's tokens fail the look-up, and a
-- re-created one has a new password hash.
ALTER TABLE users ADD COLUMN credential_epoch INTEGER NOT NULL DEFAULT 0;

-- 1 while a registration in approval mode waits for `regauth user enable` (issue 10): such an
-- account is disabled, but it is told "awaits approval", not "disabled by an administrator".
ALTER TABLE users ADD COLUMN is_pending_approval INTEGER NOT NULL DEFAULT 0 CHECK (is_pending_approval IN (0, 1));

-- Before this column, both states were is_enabled = 0. A disabled account that never logged in
-- is what approval-mode registration left (or `user add --disabled`, which also waits for an
-- administrator's `user enable`); one that did log in was disabled later, by an administrator.
UPDATE users SET is_pending_approval = 1 WHERE is_enabled = 0 AND last_login_at_unix = 0;
