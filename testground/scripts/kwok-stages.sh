# Writes KWOK's pod lifecycle (sourced by cluster-up). A pod bound to a KWOK node becomes Running
# and Ready, after the delay in its annotation testground.spot-fargate.io/ready-after (a Go duration)
# if it has one. The annotation testground.spot-fargate.io/never-ready-on = any|fargate|spot keeps it
# Running but never Ready, everywhere or only on that capacity (judged by the pod's compute-type
# label, which is what puts a pod on Fargate): how tests make a rollout that cannot complete.

NEVER_READY='.metadata.annotations["testground.spot-fargate.io/never-ready-on"]'
ON_FARGATE='.metadata.labels["compute-type"]'

pod_stage() { # pod_stage <name> <ready: True|False> <extra matchExpressions (YAML lines)>
  cat <<STAGE
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: $1
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.podIP'
      operator: 'DoesNotExist'
$3
  delay:
    durationMilliseconds: 0
    durationFrom:
      expressionFrom: '.metadata.annotations["testground.spot-fargate.io/ready-after"]'
  next:
    statusTemplate: |
      {{ \$now := Now }}
      conditions:
      - lastTransitionTime: {{ \$now | Quote }}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{ \$now | Quote }}
        status: "$2"
        type: Ready
      - lastTransitionTime: {{ \$now | Quote }}
        status: "$2"
        type: ContainersReady
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: $( [[ $2 == True ]] && echo true || echo false )
        restartCount: 0
        started: true
        state:
          running:
            startedAt: {{ \$now | Quote }}
      {{ end }}
      hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
      podIP: {{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}
      phase: Running
      startTime: {{ \$now | Quote }}
STAGE
}

expr() { # expr <key> <operator> [value]
  printf "    - key: '%s'\n      operator: '%s'\n" "$1" "$2"
  [[ -n "${3:-}" ]] && printf "      values: ['%s']\n" "$3"
  return 0
}

# KWOK's node stages for a ground under load (the load fault scenario adds this file to KWOK's
# --config). Left to its defaults, KWOK 0.7.0 with node leases on patches every node's status every
# 20-45 s besides renewing its lease (getDefaultNodeStages is passed NodeLeaseDurationSeconds == 0).
# With one node per Fargate pod that was most of the API server's work at a thousand moves (about
# 66 status patches a second at 1500 Fargate nodes). These are KWOK's own stages for use with leases:
# the lease carries liveness, the status is refreshed every 10-20 minutes. They are not the default
# of the ground because the frequent status heartbeat is what keeps nodes Ready through the API
# server restarts of the fault suite: KWOK retries a failed lease renewal only at its next interval,
# so after an outage the leases alone lapse and the node lifecycle controller marks every pod
# NotReady, which KWOK never undoes. Read from KWOK's module (in the Go module cache since
# build-binaries.sh built it), so they stay those of the version we run.
write_kwok_lease_node_stages() { # write_kwok_lease_node_stages <path>
  local dir
  # Downloaded first if the module cache lacks it (binaries cached, module cache cleaned).
  (cd "$GO_DIR/kwok" && go mod download sigs.k8s.io/kwok)
  dir="$(cd "$GO_DIR/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)"
  [[ -n "$dir" && -d "$dir" ]] || { echo "KWOK's module source not found (go list -m sigs.k8s.io/kwok)" >&2; return 1; }
  {
    cat "$dir/kustomize/stage/node/fast/node-initialize.yaml"
    echo ---
    cat "$dir/kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml"
  } > "$1"
}

write_kwok_stages() { # write_kwok_stages <path>
  {
    # KWOK runs 4 workers each for node leases, node stages and pod stages by default. With one node
    # per Fargate pod, 1500 nodes need 150 lease renewals a second; at 4 in flight and the API server's
    # latency under a launch wave, renewals fell behind and the node lifecycle controller marked
    # Fargate nodes and their pods NotReady (measured with testground/src/measure-fargate-main.ts).
    # More in flight costs no more writes: each lease is still renewed once per interval.
    cat <<'CONFIG'
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokConfiguration
options:
  nodeLeaseParallelism: 32
  nodePlayStageParallelism: 16
  podPlayStageParallelism: 16
CONFIG
    pod_stage pod-ready True "$(expr "$NEVER_READY" DoesNotExist)"
    pod_stage pod-ready-off-fargate True "$(expr "$NEVER_READY" In fargate; expr "$ON_FARGATE" NotIn fargate)"
    pod_stage pod-ready-on-fargate True "$(expr "$NEVER_READY" In spot; expr "$ON_FARGATE" In fargate)"
    pod_stage pod-never-ready False "$(expr "$NEVER_READY" In any)"
    pod_stage pod-never-ready-on-fargate False "$(expr "$NEVER_READY" In fargate; expr "$ON_FARGATE" In fargate)"
    pod_stage pod-never-ready-off-fargate False "$(expr "$NEVER_READY" In spot; expr "$ON_FARGATE" NotIn fargate)"
    cat <<'STAGE'
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-delete
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'Exists'
  next:
    finalizers:
      empty: true
    delete: true
STAGE
  } > "$1"
}
