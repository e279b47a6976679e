#!/usr/bin/env bash
# Exits 0 when every component cluster-up started is still running.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
status=0
for name in etcd kube-apiserver kube-controller-manager kube-scheduler kwok sqs eks-simulator; do
  pidfile="$PID_DIR/$name.pid"
  if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "$name running (pid $(cat "$pidfile"), log $LOG_DIR/$name.log)"
  else
    echo "$name NOT running"; status=1
  fi
done
exit $status
