-- Grant look-ups cost what the caller's own grants cost, not what the table holds (issue 9,
-- item 1). The token path itself uses the unique index permissions_grantee_pattern from 0001
-- (grantee, pattern): src/accounts/permissions.ts looks up each (grantee, covering pattern)
-- pair. These two serve the other questions:
-- - registration's "is this namespace handed out?" is a range over pattern (isNamespaceInUse);
-- - deleting a user cascades to their grants, which needs user_id on its own (group_id has
--   permissions_group since 0001).
CREATE INDEX permissions_pattern ON permissions (pattern);
CREATE INDEX permissions_user ON permissions (user_id);
