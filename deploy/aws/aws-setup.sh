#!/usr/bin/env bash
# Creates (or updates) the AWS side of spot-fargate-orchestrator with the AWS CLI:
#   - the interruption queue (SQS, SQS-managed encryption) and its dead-letter queue,
#   - the queue policy that lets only the EventBridge rule below send to it, and denies every other
#     sender (sqs:SendMessage only: the account keeps administering the queue),
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
# One queue and one role per installation: every name derives from the cluster and the Region,
#   NAME = spot-fargate-orchestrator-<cluster>-<region>
# which names the queue, the rule, the IAM policy and the role; the dead-letter queue is NAME-dlq.
# IAM role and EventBridge rule names are at most 64 characters, so a cluster name longer than 23
# characters is written as its first 14, "-" and the first 8 hex digits of its SHA-256 (distinct
# clusters keep distinct names; the same cluster always gets the same one). --print-names shows them.
# Before changing anything, the script refuses (exit 3) to take over an existing role whose trust
# policy names another cluster's OIDC provider: that role is another installation's.
#
# usage: deploy/aws/aws-setup.sh --cluster-name NAME [options]
#   --cluster-name NAME        the EKS cluster: names derive from it, and its OIDC issuer is looked
#                              up (eks describe-cluster) for the IRSA role unless --oidc-issuer is given
#   --region REGION            default: $AWS_REGION, $AWS_DEFAULT_REGION, the CLI's configuration
#   --name NAME                use NAME instead of the derived name (at most 64 characters), e.g. for
#                              a second installation in one cluster, which needs a queue of its own
#   --retention SECONDS        how long an undelivered event is kept (default 300: a warning is
#                              worthless once its two minutes are over)
#   --visibility-timeout S     how long a received message stays hidden before it is delivered
#                              again (default 30)
#   --max-receive-count N      deliveries before a message moves to the dead-letter queue (default 5)
#   --oidc-issuer URL          the IRSA role trusts this issuer (https://oidc.eks.REGION.amazonaws.com/id/X)
#                              instead of the one eks describe-cluster gives
#   --namespace NS             the controller's namespace (default spot-fargate-orchestrator)
#   --service-account NAME     its ServiceAccount (default spot-fargate-orchestrator)
#   --no-role                  create the IAM policy but no role (EKS Pod Identity: your own role)
#   --no-iam                   print the IAM policy, create no IAM resources
#   --policy-file FILE         also write the IAM policy document to FILE
#   --delete                   remove everything the same options would create
#   --print-names              print the names (NAME_TOKEN is cloudformation.yaml's ClusterName) and exit
#
# The AWS CLI v1 or v2 is used as `aws` (or $AWS_CLI). AWS_ENDPOINT_URL, when set, is passed to
# every call, so the script runs unchanged against a local SQS/EventBridge/IAM server.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
name=""
region="${AWS_REGION:-${AWS_DEFAULT_REGION:-}}"
retention=300
visibility=30
max_receive=5
cluster=""
issuer=""
sa_namespace=spot-fargate-orchestrator
sa_name=spot-fargate-orchestrator
iam=true
role=true
policy_file=""
delete=false
print_names=false

die() { echo "aws-setup: $*" >&2; exit 2; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --name) name="${2:?--name needs a value}"; shift 2 ;;
    --region) region="${2:?--region needs a value}"; shift 2 ;;
    --retention) retention="${2:?}"; shift 2 ;;
    --visibility-timeout) visibility="${2:?}"; shift 2 ;;
    --max-receive-count) max_receive="${2:?}"; shift 2 ;;
    --cluster-name) cluster="${2:?}"; shift 2 ;;
    --oidc-issuer) issuer="${2:?}"; shift 2 ;;
    --namespace) sa_namespace="${2:?}"; shift 2 ;;
    --service-account) sa_name="${2:?}"; shift 2 ;;
    --no-iam) iam=false; shift ;;
    --no-role) role=false; shift ;;
    --policy-file) policy_file="${2:?}"; shift 2 ;;
    --delete) delete=true; shift ;;
    --print-names) print_names=true; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
[[ "$retention" =~ ^[0-9]+$ && "$retention" -ge 60 && "$retention" -le 1209600 ]] || die "--retention must be 60..1209600 seconds"
[[ "$visibility" =~ ^[0-9]+$ && "$visibility" -le 43200 ]] || die "--visibility-timeout must be 0..43200 seconds"
[[ "$max_receive" =~ ^[0-9]+$ && "$max_receive" -ge 1 && "$max_receive" -le 1000 ]] || die "--max-receive-count must be 1..1000"
[[ -n "$cluster" || -n "$name" ]] || die "--cluster-name is required: every name derives from the cluster and the Region (see --help)"
if [[ -n "$cluster" ]]; then
  [[ "$cluster" =~ ^[0-9A-Za-z][A-Za-z0-9_-]*$ && ${#cluster} -le 100 ]] || die "--cluster-name: an EKS cluster name (letters, digits, - and _, at most 100), got \"$cluster\""
fi

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
[[ "$region" =~ ^[a-z]{2}(-[a-z0-9]+)+$ ]] || die "--region: an AWS Region such as us-east-1, got \"$region\""

sha256_hex() { if command -v sha256sum >/dev/null; then sha256sum; else shasum -a 256; fi | cut -c1-8; }
# The cluster as it appears in names: itself up to 23 characters, else its first 14, "-" and the
# first 8 hex digits of its SHA-256. 26 (the prefix) + 23 + 1 + 14 (the longest Region) = 64.
name_token() {
  local c="$1"
  if (( ${#c} <= 23 )); then echo "$c"; else echo "${c:0:14}-$(printf '%s' "$c" | sha256_hex)"; fi
}
token=""
[[ -n "$cluster" ]] && token="$(name_token "$cluster")"
base="${name:-spot-fargate-orchestrator-$token-$region}"
# IAM role and EventBridge rule names: at most 64; SQS queue names 80 (base-dlq fits then).
[[ "$base" =~ ^[A-Za-z0-9_-]+$ && ${#base} -le 64 ]] || die "the name \"$base\" must be letters, digits, - and _, at most 64 characters (IAM role and EventBridge rule names)"

queue_name="$base"
dlq_name="$base-dlq"
rule_name="$base"
target_id=interruption-queue
policy_name="$base"
role_name="$base"
if $print_names; then
  [[ -n "$token" ]] && echo "NAME_TOKEN=$token"
  echo "NAME=$base"
  echo "QUEUE_NAME=$queue_name"
  echo "DLQ_NAME=$dlq_name"
  echo "RULE_NAME=$rule_name"
  echo "POLICY_NAME=$policy_name"
  echo "ROLE_NAME=$role_name"
  exit 0
fi
case "$region" in
  cn-*) partition=aws-cn ;;
  us-gov-*) partition=aws-us-gov ;;
  *) partition=aws ;;
esac
account="$(aws_ sts get-caller-identity --query Account --output text)"

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
    url="$(aws_ eks describe-cluster --name "$cluster" --query cluster.identity.oidc.issuer --output text)" ||
      die "looking up the OIDC issuer of cluster $cluster failed: pass --oidc-issuer, or --no-role"
  fi
  echo "${url#https://}"
}

if $delete; then
  log "deleting $base and $dlq_name in $account/$region"
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

# --- the role must be this cluster's: checked before anything is changed -----------------------
provider=""
if $iam && $role; then
  provider="$(oidc_provider)"
  [[ -n "$provider" ]] || die "no OIDC issuer for the IRSA role: pass --oidc-issuer, or --no-role"
  if aws_ iam get-role --role-name "$role_name" >/dev/null 2>&1; then
    # The OIDC providers (Federated principals) the role trusts now; an IRSA role of this script trusts one.
    trusted="$(aws_ iam get-role --role-name "$role_name" --query 'Role.AssumeRolePolicyDocument.Statement[].Principal.Federated' --output text |
      tr '\t' '\n' | sed -n 's#^arn:[^:]*:iam::[0-9]*:oidc-provider/##p' | sort -u)"
    if [[ "$trusted" != "$provider" ]]; then
      echo "aws-setup: refusing to change IAM role $role_name: its trust policy names the OIDC provider(s)" >&2
      echo "aws-setup:   ${trusted:-(none)}" >&2
      echo "aws-setup: and this cluster's is $provider. The role belongs to another cluster's installation," >&2
      echo "aws-setup: which would lose its queue if its trust were re-pointed here. Nothing was changed." >&2
      echo "aws-setup: Each installation needs its own role: give this one another name (--name), or delete" >&2
      echo "aws-setup: the other installation first (aws-setup.sh --delete with its options)." >&2
      exit 3
    fi
  fi
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
# The Deny makes "only the rule" hold against same-account principals too, whose own IAM policies
# could otherwise allow sqs:SendMessage (ArnNotEquals is true when a sender has no aws:SourceArn at
# all). It denies sending only: the account still reads, administers and deletes the queue.
queue_policy="{\\\"Version\\\":\\\"2012-10-17\\\",\\\"Id\\\":\\\"$queue_name\\\",\\\"Statement\\\":[\
{\\\"Sid\\\":\\\"EventBridgeSendsInterruptionEvents\\\",\\\"Effect\\\":\\\"Allow\\\",\
\\\"Principal\\\":{\\\"Service\\\":\\\"events.amazonaws.com\\\"},\\\"Action\\\":\\\"sqs:SendMessage\\\",\
\\\"Resource\\\":\\\"$queue_arn\\\",\\\"Condition\\\":{\\\"ArnEquals\\\":{\\\"aws:SourceArn\\\":\\\"$rule_arn\\\"}}},\
{\\\"Sid\\\":\\\"DenySendersOtherThanTheRule\\\",\\\"Effect\\\":\\\"Deny\\\",\\\"Principal\\\":\\\"*\\\",\\\"Action\\\":\\\"sqs:SendMessage\\\",\
\\\"Resource\\\":\\\"$queue_arn\\\",\\\"Condition\\\":{\\\"ArnNotEquals\\\":{\\\"aws:SourceArn\\\":\\\"$rule_arn\\\"}}},\
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
  --description "EC2 interruption warnings, rebalance recommendations, stopping/terminating state changes and AWS Health scheduled changes for spot-fargate-orchestrator (${cluster:-$base})" >/dev/null
aws_ events put-targets --rule "$rule_name" --targets "Id=$target_id,Arn=$queue_arn" >/dev/null
log "rule $rule_arn -> $queue_arn"

# --- IAM --------------------------------------------------------------------------------------
# The preflight (at start and `doctor`) reads this cluster's Fargate profiles; read-only, and only
# this cluster's (without a cluster name there is nothing to name, and the check is skipped).
eks_statement=""
if [[ -n "$cluster" ]]; then
  eks_statement=",
    {
      \"Sid\": \"ReadThisClustersFargateProfiles\",
      \"Effect\": \"Allow\",
      \"Action\": [\"eks:DescribeFargateProfile\", \"eks:ListFargateProfiles\"],
      \"Resource\": [\"arn:$partition:eks:$region:$account:cluster/$cluster\", \"arn:$partition:eks:$region:$account:fargateprofile/$cluster/*\"]
    }"
fi
cat > "$tmp/policy.json" <<JSON
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "ReceiveAndDeleteInterruptionEvents",
      "Effect": "Allow",
      "Action": ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:ReceiveMessage"],
      "Resource": "$queue_arn"
    }$eks_statement
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
  echo "    --set serviceAccount.roleArn=${role_out:-<role ARN>}${cluster:+ --set config.aws.cluster_name=$cluster}"
} >&2
