#!/usr/bin/env bash
# Stops one component of a running test ground by its pid file and starts it again with the very
# command line cluster-up gave it (same binary, flags and working directory; its log is appended
# to), then waits until it is healthy again. The fault suite uses it to take the API server away
# in the middle of a migration. Only the ground named by TESTGROUND_PORT_BASE and
# SPOT_TESTGROUND_STATE is touched, and only the process its pid file names.
#
#   restart-component.sh [options] <component> [extra flags...]
#     --kill           stop with SIGKILL (a crash) instead of SIGTERM (a graceful shutdown)
#     --down-for S     stay down S seconds (fractions allowed) before starting again
#     --stop-only      stop it and leave it down
#     --start-only     start it (after --stop-only)
#   extra flags are appended to the original ones; the components take the last of a repeated
#   flag, so `kube-apiserver --max-requests-inflight=2` overrides. A restart without extra flags
#   goes back to exactly the original command line.
#
# components: etcd kube-apiserver kube-controller-manager kube-scheduler kwok
# (sqs is not offered: moto keeps its queues in memory, so a restart would lose them.)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

signal=TERM down_for=0 mode=restart
while [[ $# -gt 0 && "$1" == --* ]]; do
  case "$1" in
    --kill) signal=KILL ;;
    --down-for) down_for="$2"; shift ;;
    --stop-only) mode=stop ;;
    --start-only) mode=start ;;
    *) echo "restart-component: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
name="${1:-}"
[[ -n "$name" ]] || { sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
shift
case "$name" in
  etcd|kube-apiserver|kube-controller-manager|kube-scheduler|kwok) ;;
  *) echo "restart-component: cannot restart \"$name\" (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok)" >&2; exit 2 ;;
esac

pidfile="$PID_DIR/$name.pid"
# The original command line and working directory, saved the first time: a restart with extra
# flags must not make them the new baseline.
argvfile="$PID_DIR/$name.argv"
cwdfile="$PID_DIR/$name.cwd"
[[ -f "$pidfile" ]] || { echo "restart-component: no $pidfile; is the test ground in $STATE_DIR up?" >&2; exit 1; }

stop() {
  local pid
  pid="$(cat "$pidfile")"
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "restart-component: $name (pid $pid) is not running" >&2
    return 0
  fi
  if [[ ! -f "$argvfile" ]]; then
    cp "/proc/$pid/cmdline" "$argvfile"
    readlink "/proc/$pid/cwd" > "$cwdfile"
  fi
  # cluster-up starts each component with setsid, so its pid leads its own process group.
  kill "-$signal" -- "-$pid" 2>/dev/null || kill "-$signal" "$pid"
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  echo "stopped $name (pid $pid, SIG$signal)"
}

healthy() {
  case "$name" in
    etcd) curl -sf "http://127.0.0.1:$PORT_ETCD/health" ;;
    kube-apiserver) curl -sf --cacert "$PKI_DIR/ca.crt" --cert "$PKI_DIR/admin.crt" --key "$PKI_DIR/admin.key" "https://127.0.0.1:$PORT_APISERVER/readyz" ;;
    kube-controller-manager) curl -skf "https://127.0.0.1:$PORT_KCM/healthz" ;;
    kube-scheduler) curl -skf "https://127.0.0.1:$PORT_SCHEDULER/healthz" ;;
    kwok) curl -sf "http://127.0.0.1:$PORT_KWOK/healthz" ;;
  esac
}

start() {
  [[ -f "$argvfile" ]] || { echo "restart-component: $name was never stopped by this script; nothing to start from" >&2; exit 1; }
  local argv=()
  mapfile -d '' argv < "$argvfile"
  argv+=("$@")
  local started=$SECONDS
  # As cluster-up's start(): its own session, output appended to the component's log.
  # A background job of this non-interactive shell does not lead a process group, so setsid
  # does not fork and $! is the component itself, as in cluster-up.
  cd "$(cat "$cwdfile")"
  setsid "${argv[@]}" >> "$LOG_DIR/$name.log" 2>&1 < /dev/null &
  echo $! > "$pidfile"
  cd - >/dev/null
  local pid deadline=$((SECONDS + 90))
  pid="$(cat "$pidfile")"
  until healthy >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "restart-component: $name exited while starting; last lines of $LOG_DIR/$name.log:" >&2
      tail -n 20 "$LOG_DIR/$name.log" >&2
      exit 1
    fi
    (( SECONDS < deadline )) || { echo "restart-component: $name not healthy after 90 s" >&2; exit 1; }
    sleep 0.1
  done
  echo "started $name (pid $pid, healthy after $((SECONDS - started)) s)${*:+ with $*}"
}

case "$mode" in
  stop) stop ;;
  start) start "$@" ;;
  restart)
    stop
    [[ "$down_for" == 0 ]] || sleep "$down_for"
    start "$@"
    ;;
esac
