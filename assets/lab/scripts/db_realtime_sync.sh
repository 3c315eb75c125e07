#!/bin/bash
# db_realtime_sync.sh: "keeps the external database in sync with the local
# one" (incident 1 of INCIDENTS.md). Every few seconds it compares the row
# counts of both; on a mismatch it dumps the LOCAL database with --clean and
# pipes it into the EXTERNAL one. When the local database comes back empty
# (after a deploy), this wipes production.
# Written by the lifeline lab for its own throwaway cluster.
export LIFELINE_LAB=@LAB_ID@
PSQL=@PSQL@
PG_DUMP=@PG_DUMP@
PORT=@PORT@
LOCAL_DB=tovplay_local
EXTERNAL_DB=TovPlay
PIDFILE=@RUN@/db_realtime_sync.pid
INTERVAL=@INTERVAL@

echo $$ > "$PIDFILE"
now() { date -u +%Y-%m-%dT%H:%M:%S.%3NZ; }

counts() {
  "$PSQL" -X -A -t -q -h 127.0.0.1 -p "$PORT" -U postgres -d "$1" 2>/dev/null <<'SQL'
SELECT (SELECT count(*) FROM "User") || '/' || (SELECT count(*) FROM "UserProfile") || '/' ||
       (SELECT count(*) FROM "Game") || '/' || (SELECT count(*) FROM "GameRequest") || '/' ||
       (SELECT count(*) FROM "ScheduledSession") || '/' || (SELECT count(*) FROM "UserGamePreference");
SQL
}

echo "$(now) started (pid $$): $LOCAL_DB -> $EXTERNAL_DB every ${INTERVAL}s"
while true; do
  local_counts=$(counts "$LOCAL_DB")
  external_counts=$(counts "$EXTERNAL_DB")
  if [ -n "$local_counts" ] && [ "$local_counts" != "$external_counts" ]; then
    echo "$(now) mismatch local=$local_counts external=$external_counts: syncing $LOCAL_DB -> $EXTERNAL_DB"
    "$PG_DUMP" --clean --if-exists -h 127.0.0.1 -p "$PORT" -U postgres -d "$LOCAL_DB" \
      | "$PSQL" -X -q -h 127.0.0.1 -p "$PORT" -U postgres -d "$EXTERNAL_DB" >/dev/null 2>&1
    echo "$(now) sync done: external=$(counts "$EXTERNAL_DB")"
  fi
  sleep "$INTERVAL"
done
