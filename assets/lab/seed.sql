-- Seeds one stage of TovPlay's history, server-side with generate_series:
-- rows with ids in (lo, hi] of each table, created up to :'stage_at'.
-- Deterministic: every value is a function of the row id (no random()).
-- Run by psql with -v for each variable; an empty range inserts nothing.
-- Foreign keys only point at rows that exist at this stage.

INSERT INTO "User" ("id", "email", "username", "passwordHash", "role", "createdAt", "updatedAt", "emailVerified")
SELECT i,
       'player' || i || '@tovplay.example',
       'player_' || i,
       md5('tovplay-password-' || i),
       CASE WHEN i % 50 = 1 THEN 'ADMIN' ELSE 'PLAYER' END,
       :'stage_at'::timestamp - (:u_hi - i) * interval '41 seconds',
       :'stage_at'::timestamp - (:u_hi - i) * interval '41 seconds',
       i % 3 <> 0
FROM generate_series((:u_lo + 1)::bigint, :u_hi) AS i;

INSERT INTO "UserProfile" ("id", "userId", "displayName", "bio", "createdAt")
SELECT i, i, 'Player ' || i, 'Plays ' || (ARRAY['strategy', 'racing', 'puzzles', 'shooters'])[i % 4 + 1],
       :'stage_at'::timestamp - (:p_hi - i) * interval '43 seconds'
FROM generate_series((:p_lo + 1)::bigint, :p_hi) AS i;

INSERT INTO "Game" ("id", "name", "genre", "maxPlayers", "createdAt")
SELECT i,
       COALESCE((ARRAY['Chess', 'Go', 'Catan', 'Rocket League', 'Valorant', 'Minecraft', 'Among Us',
                       'Terraria', 'Stardew Valley', 'Overcooked 2', 'Portal 2', 'Civilization VI'])[i],
                'Game ' || i),
       (ARRAY['board', 'sports', 'shooter', 'sandbox', 'party', 'strategy'])[i % 6 + 1],
       2 + i % 7,
       :'stage_at'::timestamp - (:g_hi - i) * interval '1 day'
FROM generate_series((:g_lo + 1)::bigint, :g_hi) AS i;

INSERT INTO "GameRequest" ("id", "senderId", "gameId", "status", "message", "createdAt")
SELECT i,
       (i * 7919) % :u_hi + 1,
       (i * 31) % :g_all + 1,
       (ARRAY['PENDING', 'ACCEPTED', 'DECLINED'])[i % 3 + 1],
       'Request #' || i,
       :'stage_at'::timestamp - (:r_hi - i) * interval '17 seconds'
FROM generate_series((:r_lo + 1)::bigint, :r_hi) AS i;

INSERT INTO "ScheduledSession" ("id", "organizerId", "title", "scheduledFor", "durationMin", "createdAt")
SELECT i,
       (i * 104729) % :u_hi + 1,
       'Session ' || i,
       :'stage_at'::timestamp + (i % 14) * interval '1 day' + (i % 24) * interval '1 hour',
       30 * (1 + i % 4),
       :'stage_at'::timestamp - (:s_hi - i) * interval '3 minutes'
FROM generate_series((:s_lo + 1)::bigint, :s_hi) AS i;

INSERT INTO "UserGamePreference" ("id", "userId", "gameId", "rank", "weight")
SELECT i, (i - 1) / :g_all + 1, (i - 1) % :g_all + 1, 1 + i % 5, 1 + i % 3
FROM generate_series((:f_lo + 1)::bigint, :f_hi) AS i;

INSERT INTO "AuditLog" ("id", "userId", "action", "detail", "createdAt")
SELECT i,
       (i * 13) % :u_hi + 1,
       (ARRAY['login', 'profile.update', 'request.send', 'session.create'])[i % 4 + 1],
       jsonb_build_object('n', i),
       :'stage_at'::timestamp - (:a_hi - i) * interval '29 seconds'
FROM generate_series((:a_lo + 1)::bigint, :a_hi) AS i;

-- Sequences continue after the seeded ids.
SELECT setval(pg_get_serial_sequence('"User"', 'id'), max("id")) FROM "User" HAVING count(*) > 0;
SELECT setval(pg_get_serial_sequence('"UserProfile"', 'id'), max("id")) FROM "UserProfile" HAVING count(*) > 0;
SELECT setval(pg_get_serial_sequence('"Game"', 'id'), max("id")) FROM "Game" HAVING count(*) > 0;
SELECT setval(pg_get_serial_sequence('"GameRequest"', 'id'), max("id")) FROM "GameRequest" HAVING count(*) > 0;
SELECT setval(pg_get_serial_sequence('"ScheduledSession"', 'id'), max("id")) FROM "ScheduledSession" HAVING count(*) > 0;
SELECT setval(pg_get_serial_sequence('"UserGamePreference"', 'id'), max("id")) FROM "UserGamePreference" HAVING count(*) > 0;
SELECT setval(pg_get_serial_sequence('"AuditLog"', 'id'), max("id")) FROM "AuditLog" HAVING count(*) > 0;
