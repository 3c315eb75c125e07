-- migration-reset, part 2: the deploy's seed script creates one account,
-- so the database is not even empty afterwards.
INSERT INTO "User" ("email", "username", "passwordHash", "role")
VALUES ('legacy@tovplay.example', 'Legacy Account', md5('legacy'), 'ADMIN');
