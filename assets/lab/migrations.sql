-- The TovPlay application schema as 22 Prisma-style migrations (incident 2
-- and 4 of INCIDENTS.md). Each migration starts at a "-- migration: NAME"
-- line; the lab applies them in order and records each in
-- "_prisma_migrations", as `prisma migrate deploy` does.

-- migration: 20240105093000_init
CREATE TABLE "User" (
    "id" SERIAL PRIMARY KEY,
    "email" TEXT NOT NULL,
    "username" TEXT NOT NULL,
    "passwordHash" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX "User_email_key" ON "User"("email");

-- migration: 20240112141500_user_profile
CREATE TABLE "UserProfile" (
    "id" SERIAL PRIMARY KEY,
    "userId" INTEGER NOT NULL,
    "displayName" TEXT,
    "bio" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX "UserProfile_userId_key" ON "UserProfile"("userId");
ALTER TABLE "UserProfile" ADD CONSTRAINT "UserProfile_userId_fkey"
    FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- migration: 20240119101000_game
CREATE TABLE "Game" (
    "id" SERIAL PRIMARY KEY,
    "name" TEXT NOT NULL,
    "genre" TEXT NOT NULL,
    "maxPlayers" INTEGER NOT NULL DEFAULT 4,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX "Game_name_key" ON "Game"("name");

-- migration: 20240126163000_game_request
CREATE TABLE "GameRequest" (
    "id" SERIAL PRIMARY KEY,
    "senderId" INTEGER NOT NULL,
    "gameId" INTEGER NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'PENDING',
    "message" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);
ALTER TABLE "GameRequest" ADD CONSTRAINT "GameRequest_senderId_fkey"
    FOREIGN KEY ("senderId") REFERENCES "User"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "GameRequest" ADD CONSTRAINT "GameRequest_gameId_fkey"
    FOREIGN KEY ("gameId") REFERENCES "Game"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- migration: 20240202120000_scheduled_session
CREATE TABLE "ScheduledSession" (
    "id" SERIAL PRIMARY KEY,
    "organizerId" INTEGER NOT NULL,
    "title" TEXT NOT NULL,
    "scheduledFor" TIMESTAMP(3) NOT NULL,
    "durationMin" INTEGER NOT NULL DEFAULT 60,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);
ALTER TABLE "ScheduledSession" ADD CONSTRAINT "ScheduledSession_organizerId_fkey"
    FOREIGN KEY ("organizerId") REFERENCES "User"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- migration: 20240209094500_user_game_preference
CREATE TABLE "UserGamePreference" (
    "id" SERIAL PRIMARY KEY,
    "userId" INTEGER NOT NULL,
    "gameId" INTEGER NOT NULL,
    "rank" INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX "UserGamePreference_userId_gameId_key" ON "UserGamePreference"("userId", "gameId");
ALTER TABLE "UserGamePreference" ADD CONSTRAINT "UserGamePreference_userId_fkey"
    FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "UserGamePreference" ADD CONSTRAINT "UserGamePreference_gameId_fkey"
    FOREIGN KEY ("gameId") REFERENCES "Game"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- migration: 20240216110000_user_role
ALTER TABLE "User" ADD COLUMN "role" TEXT NOT NULL DEFAULT 'PLAYER';

-- migration: 20240223153000_game_request_responded_at
ALTER TABLE "GameRequest" ADD COLUMN "respondedAt" TIMESTAMP(3);

-- migration: 20240301090000_audit_log
CREATE TABLE "AuditLog" (
    "id" BIGSERIAL PRIMARY KEY,
    "userId" INTEGER,
    "action" TEXT NOT NULL,
    "detail" JSONB,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- migration: 20240308100000_delete_audit
-- Every deleted row is copied here by a trigger that fires ALWAYS, even
-- for sessions in replica mode (sync tools run that way).
CREATE TABLE "DeleteAudit" (
    "id" BIGSERIAL PRIMARY KEY,
    "tableName" TEXT NOT NULL,
    "rowId" INTEGER,
    "oldRow" JSONB NOT NULL,
    "deletedBy" TEXT NOT NULL DEFAULT current_user,
    "deletedAt" TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE FUNCTION "audit_delete"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO "DeleteAudit" ("tableName", "rowId", "oldRow")
    VALUES (TG_TABLE_NAME, OLD."id", to_jsonb(OLD));
    RETURN OLD;
END
$$;
CREATE TRIGGER "User_delete_audit" AFTER DELETE ON "User"
    FOR EACH ROW EXECUTE FUNCTION "audit_delete"();
ALTER TABLE "User" ENABLE ALWAYS TRIGGER "User_delete_audit";

-- migration: 20240315143000_session_status
ALTER TABLE "ScheduledSession" ADD COLUMN "status" TEXT NOT NULL DEFAULT 'SCHEDULED';

-- migration: 20240322081500_user_last_login
ALTER TABLE "User" ADD COLUMN "lastLoginAt" TIMESTAMP(3);

-- migration: 20240329120000_game_request_status_index
CREATE INDEX "GameRequest_status_idx" ON "GameRequest"("status");

-- migration: 20240405130000_profile_avatar
ALTER TABLE "UserProfile" ADD COLUMN "avatarUrl" TEXT;

-- migration: 20240412094000_game_platform
ALTER TABLE "Game" ADD COLUMN "platform" TEXT NOT NULL DEFAULT 'PC';

-- migration: 20240419161500_session_timezone
ALTER TABLE "ScheduledSession" ADD COLUMN "timezone" TEXT NOT NULL DEFAULT 'UTC';

-- migration: 20240426100000_preference_weight
ALTER TABLE "UserGamePreference" ADD COLUMN "weight" INTEGER NOT NULL DEFAULT 1;

-- migration: 20240503111500_session_scheduled_for_index
CREATE INDEX "ScheduledSession_scheduledFor_idx" ON "ScheduledSession"("scheduledFor");

-- migration: 20240510090000_user_email_verified
ALTER TABLE "User" ADD COLUMN "emailVerified" BOOLEAN NOT NULL DEFAULT false;

-- migration: 20240517140000_delete_audit_more_tables
CREATE TRIGGER "GameRequest_delete_audit" AFTER DELETE ON "GameRequest"
    FOR EACH ROW EXECUTE FUNCTION "audit_delete"();
ALTER TABLE "GameRequest" ENABLE ALWAYS TRIGGER "GameRequest_delete_audit";
CREATE TRIGGER "ScheduledSession_delete_audit" AFTER DELETE ON "ScheduledSession"
    FOR EACH ROW EXECUTE FUNCTION "audit_delete"();
ALTER TABLE "ScheduledSession" ENABLE ALWAYS TRIGGER "ScheduledSession_delete_audit";

-- migration: 20240524120000_game_request_expires_at
ALTER TABLE "GameRequest" ADD COLUMN "expiresAt" TIMESTAMP(3);

-- migration: 20240531093000_user_created_at_index
CREATE INDEX "User_createdAt_idx" ON "User"("createdAt");
