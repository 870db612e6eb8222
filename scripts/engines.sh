#!/bin/sh
# Starts the engines examlab drives when they are not running (no systemd needed) and waits for them.
set -eu
log_dir=${EXAMLAB_LOG_DIR:-/var/log/examlab}
mkdir -p "$log_dir"

wait_for() { # what, seconds, command...
  what=$1; seconds=$2; shift 2
  i=0
  while ! "$@" >/dev/null 2>&1; do
    i=$((i + 1))
    if [ "$i" -gt $((seconds * 4)) ]; then
      echo "$what did not come up within ${seconds}s; see $log_dir" >&2
      exit 2
    fi
    sleep 0.25
  done
}

if ! docker info >/dev/null 2>&1; then
  echo "starting dockerd (log: $log_dir/dockerd.log)"
  nohup dockerd >"$log_dir/dockerd.log" 2>&1 &
  wait_for dockerd 60 docker info
fi
