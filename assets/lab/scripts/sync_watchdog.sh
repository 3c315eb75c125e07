#!/bin/bash
# sync_watchdog.sh: the monitor of incident 1: every 2 seconds it checks that
# the restarter runs and starts it again if not. Stopping the restarter alone
# is not enough either.
# Written by the lifeline lab for its own throwaway cluster.
export LIFELINE_LAB=@LAB_ID@
RUN=@RUN@
LOG=@LOG@
RESTARTER=@SCRIPTS@/sync_restarter.sh

echo $$ > "$RUN/sync_watchdog.pid"
now() { date -u +%Y-%m-%dT%H:%M:%S.%3NZ; }

alive() {
  local pid state
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF "$2" || return 1
  state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)
  [ -n "$state" ] && [ "$state" != Z ]
}

echo "$(now) started (pid $$): checks sync_restarter every 2s"
while true; do
  sleep 2
  if ! alive "$RUN/sync_restarter.pid" sync_restarter.sh; then
    echo "$(now) sync_restarter is not running: starting it"
    setsid -f "$RESTARTER" >>"$LOG/sync_restarter.log" 2>&1 </dev/null
  fi
done
