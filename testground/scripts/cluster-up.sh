#!/usr/bin/env bash
# Starts the local EKS-like test ground on 127.0.0.1: etcd, kube-apiserver (TLS, Node,RBAC,
# service-account tokens), kube-controller-manager, kube-scheduler, KWOK as every kubelet, the
# simulated EKS Fargate (admission webhook + fargate-scheduler), moto's SQS/EventBridge server,
# then the default spot and on-demand node pools and the interruption queue with its rule.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/pki.sh"
source "$(dirname "${BASH_SOURCE[0]}")/kwok-stages.sh"

TIME_SCALE="${TESTGROUND_TIME_SCALE:-1}"
# The Fargate simulator (testground/src/fargate/settings.ts): AWS's launch throttle for EKS-only
# accounts (burst 20, 20 launches per simulated second) and start-up times of 50-75 s at time scale 1,
# drawn from a seed that is printed so a run can be replayed with TESTGROUND_FARGATE_SEED.
FARGATE_BURST="${TESTGROUND_FARGATE_BURST:-20}"
FARGATE_RATE="${TESTGROUND_FARGATE_RATE:-20}"
FARGATE_START="${TESTGROUND_FARGATE_START:-uniform:50-75}"
FARGATE_SEED="${TESTGROUND_FARGATE_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}"
for value in "$FARGATE_BURST" "$FARGATE_RATE" "$FARGATE_START" "$FARGATE_SEED"; do
  # Written into ground.json as strings; the simulator checks the values themselves.
  [[ "$value" =~ ^[A-Za-z0-9:.-]+$ ]] || { echo "TESTGROUND_FARGATE_*: \"$value\" is not a setting (letters, digits and : . - only)" >&2; exit 1; }
done

if [[ -f "$STATE_DIR/ground.json" ]] && bash "$TESTGROUND_DIR/scripts/cluster-status.sh" >/dev/null 2>&1; then
  echo "test ground already up"
  grep -m1 -o 'fargate-scheduler: .*' "$LOG_DIR/eks-simulator.log" || true
  echo "kubeconfig: $ADMIN_KUBECONFIG"
  exit 0
fi
if [[ -d "$PID_DIR" ]]; then
  echo "cleaning up a test ground that is partly up"
  bash "$TESTGROUND_DIR/scripts/cluster-down.sh" >/dev/null
fi

started_at=$SECONDS
bash "$TESTGROUND_DIR/scripts/build-binaries.sh"
bash "$TESTGROUND_DIR/scripts/install-moto.sh"

for port in $PORT_ETCD $PORT_ETCD_PEER $PORT_APISERVER $PORT_WEBHOOK $PORT_KCM $PORT_SCHEDULER $PORT_KWOK $PORT_SQS; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port on 127.0.0.1 is taken by another process; choose another block with TESTGROUND_PORT_BASE (now $PORT_BASE)" >&2
    exit 1
  fi
done

mkdir -p "$LOG_DIR" "$PID_DIR" "$STATE_DIR/etcd" "$STATE_DIR/bin"
make_pki
write_kwok_stages "$STATE_DIR/kwok-stages.yaml"
write_kwok_lease_node_stages "$STATE_DIR/kwok-lease-node-stages.yaml"
ln -sf "$K8S_BIN/kubectl" "$STATE_DIR/bin/kubectl"

fail() { # fail <component> <why>
  echo "test ground: $1 failed to start: $2" >&2
  echo "--- last lines of $LOG_DIR/$1.log ---" >&2
  tail -n 30 "$LOG_DIR/$1.log" >&2 || true
  bash "$TESTGROUND_DIR/scripts/cluster-down.sh" >/dev/null 2>&1 || true
  exit 1
}

start() { # start <component> <command>...
  local name="$1"; shift
  setsid "$@" > "$LOG_DIR/$name.log" 2>&1 < /dev/null &
  echo $! > "$PID_DIR/$name.pid"
}

wait_until() { # wait_until <component> <seconds> <check command>...
  local name="$1" deadline=$((SECONDS + $2)); shift 2
  until "$@" >/dev/null 2>&1; do
    kill -0 "$(cat "$PID_DIR/$name.pid")" 2>/dev/null || fail "$name" "the process exited"
    (( SECONDS < deadline )) || fail "$name" "not healthy after $(( $2 )) s"
    sleep 0.2
  done
  echo "  $name ready"
}

curl_admin=(curl -sf --cacert "$PKI_DIR/ca.crt" --cert "$PKI_DIR/admin.crt" --key "$PKI_DIR/admin.key")

echo "starting the control plane (logs in $LOG_DIR)"
# fsync is off: the data is thrown away at cluster-down and the tests are not about disk durability.
start etcd "$ETCD_BIN/etcd" --name testground --data-dir "$STATE_DIR/etcd" \
  --listen-client-urls "http://127.0.0.1:$PORT_ETCD" --advertise-client-urls "http://127.0.0.1:$PORT_ETCD" \
  --listen-peer-urls "http://127.0.0.1:$PORT_ETCD_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$PORT_ETCD_PEER" \
  --initial-cluster "testground=http://127.0.0.1:$PORT_ETCD_PEER" --unsafe-no-fsync --log-level warn
wait_until etcd 30 curl -sf "http://127.0.0.1:$PORT_ETCD/health"

start kube-apiserver "$K8S_BIN/kube-apiserver" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$PORT_APISERVER" \
  --etcd-servers "http://127.0.0.1:$PORT_ETCD" \
  --tls-cert-file "$PKI_DIR/apiserver.crt" --tls-private-key-file "$PKI_DIR/apiserver.key" \
  --client-ca-file "$PKI_DIR/ca.crt" \
  --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$PKI_DIR/sa.pub" --service-account-signing-key-file "$PKI_DIR/sa.key" \
  --service-cluster-ip-range 10.96.0.0/16 --allow-privileged=true --profiling=false \
  --endpoint-reconciler-type none
wait_until kube-apiserver 90 "${curl_admin[@]}" "https://127.0.0.1:$PORT_APISERVER/readyz"

# Client rate limits are raised from the defaults (20 qps) so that, at thousands of Deployments,
# the deployment controller reflects what the API server can do rather than a client throttle.
# The ttl controller is off: its annotation only tunes a real kubelet's Secret cache (KWOK has none),
# and it cost a patch per Fargate node plus one of every node each time the count crossed 100, 500
# or 1000 (measured with testground/src/measure-fargate-main.ts).
start kube-controller-manager "$K8S_BIN/kube-controller-manager" \
  --kubeconfig "$PKI_DIR/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$PKI_DIR/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$PKI_DIR/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$PORT_KCM" --leader-elect=false \
  --service-account-private-key-file "$PKI_DIR/sa.key" --root-ca-file "$PKI_DIR/ca.crt" \
  --use-service-account-credentials=true \
  --kube-api-qps 200 --kube-api-burst 400 --controllers '*,-ttl' \
  --concurrent-deployment-syncs 10 --concurrent-replicaset-syncs 10
wait_until kube-controller-manager 60 curl -skf "https://127.0.0.1:$PORT_KCM/healthz"

start kube-scheduler "$K8S_BIN/kube-scheduler" \
  --kubeconfig "$PKI_DIR/scheduler.kubeconfig" \
  --authentication-kubeconfig "$PKI_DIR/scheduler.kubeconfig" \
  --authorization-kubeconfig "$PKI_DIR/scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$PORT_SCHEDULER" --leader-elect=false
wait_until kube-scheduler 60 curl -skf "https://127.0.0.1:$PORT_SCHEDULER/healthz"

start kwok "$KWOK_BIN/kwok" --kubeconfig "$PKI_DIR/kwok.kubeconfig" \
  --manage-all-nodes=false --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
  --server-address "127.0.0.1:$PORT_KWOK" --node-lease-duration-seconds 40 \
  --config "$STATE_DIR/kwok-stages.yaml"
wait_until kwok 30 curl -sf "http://127.0.0.1:$PORT_KWOK/healthz"

start sqs "$MOTO_VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT_SQS"
wait_until sqs 30 curl -sf "http://127.0.0.1:$PORT_SQS/moto-api/"

cat > "$STATE_DIR/ground.json" <<JSON
{
  "kubeconfig": "$ADMIN_KUBECONFIG",
  "fargateKubeconfig": "$PKI_DIR/fargate.kubeconfig",
  "apiServer": "https://127.0.0.1:$PORT_APISERVER",
  "sqsEndpoint": "http://127.0.0.1:$PORT_SQS",
  "webhookPort": $PORT_WEBHOOK,
  "webhookCert": "$PKI_DIR/webhook.crt",
  "webhookKey": "$PKI_DIR/webhook.key",
  "webhookCA": "$PKI_DIR/webhook-ca.crt",
  "timeScale": $TIME_SCALE,
  "fargate": { "burst": "$FARGATE_BURST", "rate": "$FARGATE_RATE", "start": "$FARGATE_START", "seed": "$FARGATE_SEED" },
  "region": "us-east-1",
  "account": "123456789012",
  "kubectl": "$K8S_BIN/kubectl",
  "logDir": "$LOG_DIR"
}
JSON

cd "$PROJECT_DIR"
start eks-simulator node --import tsx testground/src/simulator-main.ts "$STATE_DIR/ground.json"
wait_until eks-simulator 60 test -f "$STATE_DIR/simulator.ready"

if ! node --import tsx testground/src/setup-main.ts "$STATE_DIR/ground.json" > "$LOG_DIR/setup.log" 2>&1; then
  echo "test ground: pools and queue setup failed" >&2
  tail -n 30 "$LOG_DIR/setup.log" >&2
  bash "$TESTGROUND_DIR/scripts/cluster-down.sh" >/dev/null 2>&1 || true
  exit 1
fi
cat "$LOG_DIR/setup.log"

echo "test ground up in $((SECONDS - started_at)) s (time scale $TIME_SCALE)"
grep -m1 -o 'fargate-scheduler: .*' "$LOG_DIR/eks-simulator.log" || true
echo "kubeconfig: $ADMIN_KUBECONFIG"
echo "kubectl:    $STATE_DIR/bin/kubectl --kubeconfig $ADMIN_KUBECONFIG get nodes"
