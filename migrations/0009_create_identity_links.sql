-- Identities at OpenID Connect providers linked to database accounts (issue 15;
-- docs/identity-providers.md). An identity is its issuer and subject (OIDC Core §2: `sub` is
-- unique only within its issuer), never a name or an email: a provider account named like a local
-- one takes nothing over unless a row here says so.
CREATE TABLE identity_links (
  id INTEGER PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  -- identity_providers.oidc[].name at the time of linking.
  provider TEXT NOT NULL,
  issuer TEXT NOT NULL,
  subject TEXT NOT NULL,
  -- 'first_sign_in' (the sign-in created the account) or 'admin' (`regauth user link`).
  linked_by TEXT NOT NULL CHECK (linked_by IN ('first_sign_in', 'admin')),
  -- The provider's refresh token for the re-checks (revalidate_after_seconds); NULL: none held.
  refresh_token TEXT,
  created_at_unix INTEGER NOT NULL,
  -- JSON object, label -> [values], from the claims named in labels_from_claims at the last
  -- sign-in or re-check: the ACL's labels for the account's access tokens.
  labels TEXT NOT NULL DEFAULT '{}',
  -- The last sign-in or successful re-check; 0: never signed in through the provider yet.
  checked_at_unix INTEGER NOT NULL DEFAULT 0,
  UNIQUE (issuer, subject),
  UNIQUE (user_id, provider)
) STRICT;
CREATE INDEX identity_links_checked ON identity_links (checked_at_unix);
