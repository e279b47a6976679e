// The preflight, run at start (manager.ts, which logs each result) and by `spot-orchestrator doctor`
// (preflight/doctor.ts, which prints them and exits non-zero on a failure). Three checks:
//   - fargate profile: an EKS Fargate profile selects the moved pods (compute_label_key=fargate_label)
//     in each managed namespace, asked of the EKS API; skipped, with why, where it cannot be asked
//     (no aws.cluster_name, no credentials, the endpoint unreachable, the role not allowed);
//   - queue: the SQS queue answers (how is the caller's: doctor asks GetQueueAttributes, the
//     controller, whose role may only receive, takes its first receive);
//   - rbac: every verb the controller uses is allowed where it uses it (SelfSubjectAccessReview, which
//     every authenticated identity may create, so it needs no grant of its own).
// The facts come in through PreflightProbes, so the runner is tested without a cluster or AWS.
import { DescribeFargateProfileCommand, EKSClient, ListFargateProfilesCommand } from '@aws-sdk/client-eks';
import { AuthorizationV1Api, type KubeConfig } from '@kubernetes/client-node';
import pLimit from 'p-limit';
import type { Config } from '../config/config.js';
import { messageOf } from '../kube/api.js';
import { type AccessNeed, type CheckResult, type FargateProfileFacts, judgeAccess, judgeFargateProfiles, requiredAccess } from './checks.js';

export interface PreflightProbes {
  /** The namespaces whose Fargate profile to check; `note` says how they were chosen ("*", a selector). */
  managedNamespaces: () => Promise<{ namespaces: string[]; note?: string }>;
  /** The cluster's Fargate profiles, or why they cannot be known (skip) or are wrong (fail). */
  fargateProfiles: () => Promise<FargateProfilesAnswer>;
  queue: () => Promise<CheckResult>;
  access: (need: AccessNeed) => Promise<{ allowed: boolean; reason?: string }>;
}

export type FargateProfilesAnswer = { profiles: FargateProfileFacts[]; cluster: string } | { skip: string } | { fail: string };

/**
 * Runs every check, side by side, and hands each result to `report` as it comes (so a slow EKS
 * answer does not hold back a missing verb); resolves with all of them. A probe that throws becomes
 * a failed result that quotes its error: the preflight itself never stops anything.
 */
export async function runPreflight(
  config: Pick<Config, 'kubernetes' | 'controller' | 'compute'>,
  leaseNamespace: string,
  probes: PreflightProbes,
  report: (r: CheckResult) => void = () => {},
): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const emit = (rs: CheckResult[]) => {
    for (const r of rs) {
      results.push(r);
      report(r);
    }
  };
  const guard = (check: string, subject: string, work: () => Promise<CheckResult[]>) =>
    work().then(emit, (err: unknown) => emit([{ check, subject, status: 'failed', detail: `the check itself failed: ${messageOf(err)}` }]));
  await Promise.all([
    guard('fargate profile', 'cluster', () => fargateCheck(config, probes)),
    guard('queue', 'queue', async () => [await probes.queue()]),
    guard('rbac', 'cluster-wide', async () => {
      const limit = pLimit(8);
      const needs = requiredAccess(config, leaseNamespace);
      const answers = await Promise.all(needs.map((need) => limit(async () => ({ need, ...(await probes.access(need)) }))));
      return judgeAccess(answers);
    }),
  ]);
  return results;
}

async function fargateCheck(config: Pick<Config, 'compute'>, probes: PreflightProbes): Promise<CheckResult[]> {
  const answer = await probes.fargateProfiles();
  if ('skip' in answer) return [{ check: 'fargate profile', subject: 'cluster', status: 'skipped', detail: answer.skip }];
  if ('fail' in answer) return [{ check: 'fargate profile', subject: 'cluster', status: 'failed', detail: answer.fail }];
  const { namespaces, note } = await probes.managedNamespaces();
  if (namespaces.length === 0) {
    return [{ check: 'fargate profile', subject: 'cluster', status: 'skipped', detail: `no managed namespace to check${note ? ` (${note})` : ''}` }];
  }
  const results = judgeFargateProfiles(namespaces, answer.profiles, config.compute, answer.cluster);
  return note ? results.map((r) => ({ ...r, detail: `${r.detail} [${note}]` })) : results;
}

/** Short timeouts and one retry: an unreachable endpoint is a skip to report, not a start to hold up. */
export function eksClientFor(config: Pick<Config, 'aws'>): EKSClient {
  // The endpoint comes from the SDK's own AWS_ENDPOINT_URL_EKS / AWS_ENDPOINT_URL, as for EventBridge.
  return new EKSClient({ region: config.aws.region, maxAttempts: 2, requestHandler: { connectionTimeout: 3000, requestTimeout: 10_000 } });
}

/** The cluster's Fargate profiles from the EKS API, or why not, sorted into skip (cannot ask) and fail (wrong). */
export async function fetchFargateProfiles(config: Pick<Config, 'aws'>, client?: Pick<EKSClient, 'send'>): Promise<FargateProfilesAnswer> {
  const clusterName = config.aws.cluster_name;
  if (!clusterName) {
    return { skip: 'aws.cluster_name (CLUSTER_NAME) is not set: the EKS API cannot be asked which Fargate profiles the cluster has' };
  }
  const eks = client ?? eksClientFor(config);
  try {
    const names: string[] = [];
    let nextToken: string | undefined;
    do {
      const page = await eks.send(new ListFargateProfilesCommand({ clusterName, nextToken }));
      names.push(...(page.fargateProfileNames ?? []));
      nextToken = page.nextToken;
    } while (nextToken);
    const profiles = await Promise.all(
      names.map(async (fargateProfileName) => {
        const p = (await eks.send(new DescribeFargateProfileCommand({ clusterName, fargateProfileName }))).fargateProfile;
        return {
          name: fargateProfileName,
          status: p?.status,
          selectors: (p?.selectors ?? []).map((s) => ({ namespace: s.namespace, labels: s.labels })),
        };
      }),
    );
    return { profiles, cluster: clusterName };
  } catch (err) {
    return classifyAwsError(err, `EKS cluster ${clusterName} in ${config.aws.region}`, 'eks:ListFargateProfiles and eks:DescribeFargateProfile');
  }
}

/**
 * An AWS error as the preflight reports it: what stops the question from being asked (credentials,
 * network, permission) is a skip with why; a wrong name is a failure.
 */
export function classifyAwsError(err: unknown, what: string, actions: string): { skip: string } | { fail: string } {
  const e = err as { name?: string; code?: string; cause?: { code?: string } } | null;
  const name = e?.name ?? '';
  const code = e?.code ?? e?.cause?.code ?? '';
  const message = messageOf(err);
  if (name === 'CredentialsProviderError' || /credential/i.test(name)) return { skip: `no AWS credentials to ask about ${what}: ${message}` };
  if (name === 'ResourceNotFoundException' || name === 'QueueDoesNotExist' || name === 'AWS.SimpleQueueService.NonExistentQueue')
    return { fail: `${what} does not exist: ${message}` };
  if (/AccessDenied|UnauthorizedOperation|NotAuthorized/i.test(name))
    return { skip: `these credentials may not ask about ${what} (needs ${actions}): ${message}` };
  if (/^(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNRESET|EHOSTUNREACH|ENETUNREACH)$/.test(code) || name === 'TimeoutError' || /timeout/i.test(name))
    return { skip: `the AWS endpoint for ${what} is unreachable: ${message}${code && !message.includes(code) ? ` (${code})` : ''}` };
  return { fail: `asking about ${what} failed: ${name ? `${name}: ` : ''}${message}` };
}

/** Asks the API server whether this identity may do `need` (SelfSubjectAccessReview). */
export function accessProbe(kc: KubeConfig): PreflightProbes['access'] {
  // Not a core/apps client: creating a SelfSubjectAccessReview is every authenticated identity's
  // right (system:basic-user), so it is no verb the chart has to grant.
  const authorization = kc.makeApiClient(AuthorizationV1Api);
  return async (need) => {
    const review = await authorization.createSelfSubjectAccessReview({
      body: {
        spec: {
          resourceAttributes: { group: need.group, resource: need.resource, verb: need.verb, namespace: need.namespace, name: need.name },
        },
      },
    });
    const s = review.status;
    return { allowed: s?.allowed === true, reason: s?.allowed ? undefined : s?.evaluationError || s?.reason || undefined };
  };
}
