-- The audit log (issue 10 item 6; docs/access-tokens.md "Audit log"): logins, token decisions,
-- token use and management changes. Pruned by age and count in the background (src/audit/).
CREATE TABLE audit_events (
  id INTEGER PRIMARY KEY,
  at_unix_ms INTEGER NOT NULL,
  -- "login", "token", "user.created", ... (src/audit/audit-log.ts AuditKind)
  kind TEXT NOT NULL,
  -- The account name; "" for anonymous clients, "local-admin" for the offline CLI.
  actor TEXT NOT NULL,
  ip TEXT NOT NULL DEFAULT '',
  -- For queries by repository (token decisions, grants).
  repository TEXT,
  outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'denied', 'failed')),
  -- A JSON object; never a password, a token secret or a hash.
  details TEXT NOT NULL
) STRICT;
CREATE INDEX audit_events_at ON audit_events (at_unix_ms);
CREATE INDEX audit_events_actor ON audit_events (actor, at_unix_ms);
CREATE INDEX audit_events_repository ON audit_events (repository, at_unix_ms);
CREATE INDEX audit_events_kind ON audit_events (kind, at_unix_ms);
