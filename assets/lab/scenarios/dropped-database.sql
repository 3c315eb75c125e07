-- dropped-database (incident 3 of INCIDENTS.md): the application database
-- is dropped while the server stays up; connecting gives SQLSTATE 3D000.
-- The only DROP DATABASE in lifeline: run by the lab on its own throwaway
-- cluster, whose backup catalog holds the data.
DROP DATABASE "TovPlay" WITH (FORCE);
