#!/usr/bin/env bash
# Stops exactly the processes cluster-up started (by the pids it recorded) and removes their state.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ -d "$PID_DIR" ]]; then
  # Reverse start order: clients first, etcd last.
  for name in eks-simulator sqs kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
    pidfile="$PID_DIR/$name.pid"
    [[ -f "$pidfile" ]] || continue
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL -- "-$pid" 2>/dev/null || true
      echo "stopped $name (pid $pid)"
    fi
  done
fi
rm -rf "$STATE_DIR"
echo "test ground down"
