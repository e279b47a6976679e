#!/usr/bin/env bash
# Creates (or updates) the AWS side of spot-fargate-orchestrator with the AWS CLI:
#   - the interruption queue (SQS, SQS-managed encryption) and its dead-letter queue,
#   - the queue policy that lets only the EventBridge rule below send to it,
#   - the EventBridge rule for the EC2 spot and Capacity Reservation interruption warnings,
#     rebalance recommendations, instance state changes to stopping, stopped, shutting-down or
#     terminated (the states the controller acts on; pending and running are not forwarded) and
#     AWS Health events (the controller acts on EC2 scheduled changes) (deploy/aws/event-pattern.json)
#     and its target, the queue,
#   - the IAM policy the controller needs (sqs:ReceiveMessage, sqs:ChangeMessageVisibility and
#     sqs:DeleteMessage on the queue: the controller calls ReceiveMessage, ChangeMessageVisibility
#     (to keep a message hidden while its phase 1 runs) and DeleteMessageBatch, which IAM
#     authorizes as DeleteMessage), and, given the cluster, the IAM role for its ServiceAccount (IRSA).
# Running it again updates everything in place. With --delete it removes what it created.
# deploy/aws/cloudformation.yaml creates the same resources.
#
# usage: deploy/aws/aws-setup.sh [options]
#   --name PREFIX              names: PREFIX-interruptions, PREFIX-interruptions-dlq,
#                              PREFIX-ec2-events, IAM policy and role PREFIX
#                              (default spot-fargate-orchestrator)
#   --region REGION            default: $AWS_REGION, $AWS_DEFAULT_REGION, the CLI's configuration
#   --retention SECONDS        how long an undelivered event is kept (default 300: a warning is
#                              worthless once its two minutes are over)
#   --visibility-timeout S     how long a received message stays hidden before it is delivered
#                              again (default 30)
#   --max-receive-count N      deliveries before a message moves to the dead-letter queue (default 5)
#   --cluster-name NAME        create the IRSA role, trusting this EKS cluster's OIDC issuer
#   --oidc-issuer URL          ... or trusting this issuer (https://oidc.eks.REGION.amazonaws.com/id/X)
#   --namespace NS             the controller's namespace (default spot-fargate-orchestrator)
#   --service-account NAME     its ServiceAccount (default spot-fargate-orchestrator)
#   --no-iam                   print the IAM policy, create no IAM resources
#   --policy-file FILE         also write the IAM policy document to FILE
#   --delete                   remove everything the same options would create
#
# The AWS CLI v1 or v2 is used as `aws` (or $AWS_CLI). AWS_ENDPOINT_URL, when set, is passed to
# every call, so the script runs unchanged against a local SQS/EventBridge/IAM server.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
prefix=spot-fargate-orchestrator
region="${AWS_REGION:-${AWS_DEFAULT_REGION:-}}"
retention=300
visibility=30
max_receive=5
cluster=""
issuer=""
sa_namespace=spot-fargate-orchestrator
sa_name=spot-fargate-orchestrator
iam=true
policy_file=""
delete=false

die() { echo "aws-setup: $*" >&2; exit 2; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --name) prefix="${2:?--name needs a value}"; shift 2 ;;
    --region) region="${2:?--region needs a value}"; shift 2 ;;
    --retention) retention="${2:?}"; shift 2 ;;
    --visibility-timeout) visibility="${2:?}"; shift 2 ;;
    --max-receive-count) max_receive="${2:?}"; shift 2 ;;
    --cluster-name) cluster="${2:?}"; shift 2 ;;
    --oidc-issuer) issuer="${2:?}"; shift 2 ;;
    --namespace) sa_namespace="${2:?}"; shift 2 ;;
    --service-account) sa_name="${2:?}"; shift 2 ;;
    --no-iam) iam=false; shift ;;
    --policy-file) policy_file="${2:?}"; shift 2 ;;
    --delete) delete=true; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
[[ "$retention" =~ ^[0-9]+$ && "$retention" -ge 60 && "$retention" -le 1209600 ]] || die "--retention must be 60..1209600 seconds"
[[ "$visibility" =~ ^[0-9]+$ && "$visibility" -le 43200 ]] || die "--visibility-timeout must be 0..43200 seconds"
[[ "$max_receive" =~ ^[0-9]+$ && "$max_receive" -ge 1 && "$max_receive" -le 1000 ]] || die "--max-receive-count must be 1..1000"

export AWS_PAGER=""
aws_() {
  local args=()
  [[ -n "${AWS_ENDPOINT_URL:-}" ]] && args+=(--endpoint-url "$AWS_ENDPOINT_URL")
  [[ -n "$region" ]] && args+=(--region "$region")
  "${AWS_CLI:-aws}" "${args[@]}" "$@"
}
log() { echo "aws-setup: $*" >&2; }

if [[ -z "$region" ]]; then region="$(aws_ configure get region || true)"; fi
[[ -n "$region" ]] || die "no region: pass --region or set AWS_REGION"
case "$region" in
  cn-*) partition=aws-cn ;;
  us-gov-*) partition=aws-us-gov ;;
  *) partition=aws ;;
esac
account="$(aws_ sts get-caller-identity --query Account --output text)"

queue_name="$prefix-interruptions"
dlq_name="$prefix-interruptions-dlq"
rule_name="$prefix-ec2-events"
target_id=interruption-queue
policy_name="$prefix"
role_name="$prefix"
queue_arn="arn:$partition:sqs:$region:$account:$queue_name"
dlq_arn="arn:$partition:sqs:$region:$account:$dlq_name"
rule_arn="arn:$partition:events:$region:$account:rule/$rule_name"
policy_arn="arn:$partition:iam::$account:policy/$policy_name"
role_arn="arn:$partition:iam::$account:role/$role_name"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

queue_url_of() { aws_ sqs get-queue-url --queue-name "$1" --query QueueUrl --output text 2>/dev/null; }

oidc_provider() { # the issuer without its scheme, e.g. oidc.eks.us-east-1.amazonaws.com/id/ABC
  local url="$issuer"
  if [[ -z "$url" && -n "$cluster" ]]; then
    url="$(aws_ eks describe-cluster --name "$cluster" --query cluster.identity.oidc.issuer --output text)"
  fi
  echo "${url#https://}"
}

if $delete; then
  log "deleting the resources named $prefix-* in $account/$region"
  aws_ events remove-targets --rule "$rule_name" --ids "$target_id" >/dev/null 2>&1 || true
  aws_ events delete-rule --name "$rule_name" 2>/dev/null || true
  for name in "$queue_name" "$dlq_name"; do
    if url="$(queue_url_of "$name")"; then aws_ sqs delete-queue --queue-url "$url"; fi
  done
  if $iam; then
    aws_ iam detach-role-policy --role-name "$role_name" --policy-arn "$policy_arn" 2>/dev/null || true
    aws_ iam delete-role --role-name "$role_name" 2>/dev/null || true
    for v in $(aws_ iam list-policy-versions --policy-arn "$policy_arn" --query 'Versions[?!IsDefaultVersion].VersionId' --output text 2>/dev/null || true); do
      aws_ iam delete-policy-version --policy-arn "$policy_arn" --version-id "$v"
    done
    aws_ iam delete-policy --policy-arn "$policy_arn" 2>/dev/null || true
  fi
  log "deleted"
  exit 0
fi

# --- queues -----------------------------------------------------------------------------------
ensure_queue() { # ensure_queue <name> <attributes file>: creates it, or brings its attributes up to date
  local url
  if url="$(queue_url_of "$1")"; then
    aws_ sqs set-queue-attributes --queue-url "$url" --attributes "file://$2"
  else
    url="$(aws_ sqs create-queue --queue-name "$1" --attributes "file://$2" --query QueueUrl --output text)"
  fi
  echo "$url"
}

# Kept for 4 days: what lands here is for people to look at.
cat > "$tmp/dlq.json" <<JSON
{"MessageRetentionPeriod": "345600", "SqsManagedSseEnabled": "true"}
JSON
dlq_url="$(ensure_queue "$dlq_name" "$tmp/dlq.json")"
log "dead-letter queue $dlq_url"

# Only the rule may send, and only over TLS. The policy is a JSON string inside the attribute map.
queue_policy="{\\\"Version\\\":\\\"2012-10-17\\\",\\\"Id\\\":\\\"$queue_name\\\",\\\"Statement\\\":[\
{\\\"Sid\\\":\\\"EventBridgeSendsInterruptionEvents\\\",\\\"Effect\\\":\\\"Allow\\\",\
\\\"Principal\\\":{\\\"Service\\\":\\\"events.amazonaws.com\\\"},\\\"Action\\\":\\\"sqs:SendMessage\\\",\
\\\"Resource\\\":\\\"$queue_arn\\\",\\\"Condition\\\":{\\\"ArnEquals\\\":{\\\"aws:SourceArn\\\":\\\"$rule_arn\\\"}}},\
{\\\"Sid\\\":\\\"DenyInsecureTransport\\\",\\\"Effect\\\":\\\"Deny\\\",\\\"Principal\\\":\\\"*\\\",\\\"Action\\\":\\\"sqs:*\\\",\
\\\"Resource\\\":\\\"$queue_arn\\\",\\\"Condition\\\":{\\\"Bool\\\":{\\\"aws:SecureTransport\\\":\\\"false\\\"}}}]}"
cat > "$tmp/queue.json" <<JSON
{
  "MessageRetentionPeriod": "$retention",
  "VisibilityTimeout": "$visibility",
  "ReceiveMessageWaitTimeSeconds": "20",
  "SqsManagedSseEnabled": "true",
  "RedrivePolicy": "{\"deadLetterTargetArn\":\"$dlq_arn\",\"maxReceiveCount\":\"$max_receive\"}",
  "Policy": "$queue_policy"
}
JSON
queue_url="$(ensure_queue "$queue_name" "$tmp/queue.json")"
log "interruption queue $queue_url"

# --- EventBridge rule and target --------------------------------------------------------------
aws_ events put-rule --name "$rule_name" --event-pattern "file://$here/event-pattern.json" --state ENABLED \
  --description "EC2 interruption warnings, rebalance recommendations, stopping/terminating state changes and AWS Health scheduled changes for spot-fargate-orchestrator" >/dev/null
aws_ events put-targets --rule "$rule_name" --targets "Id=$target_id,Arn=$queue_arn" >/dev/null
log "rule $rule_arn -> $queue_arn"

# --- IAM --------------------------------------------------------------------------------------
cat > "$tmp/policy.json" <<JSON
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "ReceiveAndDeleteInterruptionEvents",
      "Effect": "Allow",
      "Action": ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:ReceiveMessage"],
      "Resource": "$queue_arn"
    }
  ]
}
JSON
[[ -n "$policy_file" ]] && cp "$tmp/policy.json" "$policy_file"

role_out=""
if $iam; then
  if aws_ iam get-policy --policy-arn "$policy_arn" >/dev/null 2>&1; then
    # Five versions at most: drop the old ones, then make this document the default.
    for v in $(aws_ iam list-policy-versions --policy-arn "$policy_arn" --query 'Versions[?!IsDefaultVersion].VersionId' --output text); do
      aws_ iam delete-policy-version --policy-arn "$policy_arn" --version-id "$v"
    done
    aws_ iam create-policy-version --policy-arn "$policy_arn" --policy-document "file://$tmp/policy.json" --set-as-default >/dev/null
  else
    aws_ iam create-policy --policy-name "$policy_name" --policy-document "file://$tmp/policy.json" \
      --description "spot-fargate-orchestrator: receive and delete the interruption queue's messages" >/dev/null
  fi
  log "IAM policy $policy_arn"

  provider="$(oidc_provider)"
  if [[ -n "$provider" ]]; then
    cat > "$tmp/trust.json" <<JSON
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Principal": {"Federated": "arn:$partition:iam::$account:oidc-provider/$provider"},
      "Action": "sts:AssumeRoleWithWebIdentity",
      "Condition": {
        "StringEquals": {
          "$provider:sub": "system:serviceaccount:$sa_namespace:$sa_name",
          "$provider:aud": "sts.amazonaws.com"
        }
      }
    }
  ]
}
JSON
    if aws_ iam get-role --role-name "$role_name" >/dev/null 2>&1; then
      aws_ iam update-assume-role-policy --role-name "$role_name" --policy-document "file://$tmp/trust.json"
    else
      aws_ iam create-role --role-name "$role_name" --assume-role-policy-document "file://$tmp/trust.json" \
        --description "spot-fargate-orchestrator controller (IRSA: $sa_namespace/$sa_name)" >/dev/null
    fi
    aws_ iam attach-role-policy --role-name "$role_name" --policy-arn "$policy_arn"
    if ! aws_ iam list-open-id-connect-providers --output text | grep -qF "oidc-provider/$provider"; then
      log "warning: the IAM OIDC provider for $provider does not exist yet;"
      log "  create it (eksctl utils associate-iam-oidc-provider --cluster <name> --approve) or IRSA cannot assume the role"
    fi
    role_out="$role_arn"
    log "IAM role $role_arn for system:serviceaccount:$sa_namespace:$sa_name"
  fi
fi

# --- summary (stdout, KEY=value, for scripts) ---------------------------------------------------
echo "QUEUE_URL=$queue_url"
echo "QUEUE_ARN=$queue_arn"
echo "DLQ_URL=$dlq_url"
echo "DLQ_ARN=$dlq_arn"
echo "RULE_ARN=$rule_arn"
if $iam; then echo "POLICY_ARN=$policy_arn"; fi
if [[ -n "$role_out" ]]; then echo "ROLE_ARN=$role_out"; fi
{
  echo
  echo "IAM policy for the controller (IRSA or EKS Pod Identity):"
  cat "$tmp/policy.json"
  echo
  echo "Install with:"
  echo "  helm install spot-fargate-orchestrator charts/spot-fargate-orchestrator -n $sa_namespace --create-namespace \\"
  echo "    --set config.aws.region=$region --set config.aws.sqs_queue_url=$queue_url \\"
  echo "    --set serviceAccount.roleArn=${role_out:-<role ARN>}"
} >&2
