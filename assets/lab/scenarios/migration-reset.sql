-- migration-reset (incident 4 of INCIDENTS.md), part 1: a deploy believes
-- the database is empty and re-runs every migration from init. The
-- application tables go and "_prisma_migrations" is emptied; the lab then
-- re-applies the 22 migrations (the tables come back empty, 22 rows in
-- "_prisma_migrations") and runs migration-reset-seed.sql.
-- Run by the lifeline lab on its own throwaway cluster only.
DROP TABLE IF EXISTS "UserGamePreference", "ScheduledSession", "GameRequest", "UserProfile",
    "Game", "User", "AuditLog", "DeleteAudit" CASCADE;
DROP FUNCTION IF EXISTS "audit_delete"() CASCADE;
DELETE FROM "_prisma_migrations";
