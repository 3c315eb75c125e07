#!/bin/bash
# sync_restarter.sh: the "redundancy" of incident 1, a cron-style loop that
# every few seconds starts db_realtime_sync.sh again when its pidfile names
# no running process. Stopping the sync alone is not enough.
# Written by the lifeline lab for its own throwaway cluster.
export LIFELINE_LAB=@LAB_ID@
RUN=@RUN@
LOG=@LOG@
SYNC=@SCRIPTS@/db_realtime_sync.sh
EVERY=@EVERY@

echo $$ > "$RUN/sync_restarter.pid"
now() { date -u +%Y-%m-%dT%H:%M:%S.%3NZ; }

# alive PIDFILE NAME: the pidfile names a live (not zombie) process running NAME.
alive() {
  local pid state
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF "$2" || return 1
  state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)
  [ -n "$state" ] && [ "$state" != Z ]
}

echo "$(now) started (pid $$): checks db_realtime_sync every ${EVERY}s"
while true; do
  sleep "$EVERY"
  if ! alive "$RUN/db_realtime_sync.pid" db_realtime_sync.sh; then
    echo "$(now) db_realtime_sync is not running: starting it"
    setsid -f "$SYNC" >>"$LOG/db_realtime_sync.log" 2>&1 </dev/null
  fi
done
