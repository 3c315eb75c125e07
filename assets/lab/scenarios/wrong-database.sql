-- wrong-database (incident 2 of INCIDENTS.md): a change empties "User" of
-- the real database at a known time. It runs the way sync tools do, in
-- replica mode, so foreign keys do not stop it and the other tables keep
-- their (now orphaned) rows; the delete-audit trigger fires ALWAYS and
-- records every deleted row with its time.
-- Run by the lifeline lab on its own throwaway cluster only.
SET session_replication_role = replica;
DELETE FROM "User";
