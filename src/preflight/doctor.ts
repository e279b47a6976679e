// `spot-orchestrator doctor`: the preflight (preflight.ts) run once from the command line, with the
// caller's own identity (kubeconfig, AWS credentials), each result printed. Run it under the
// controller's ServiceAccount (a Job, or a kubeconfig with its token) to check the controller's RBAC.
//
// The queue is asked with GetQueueAttributes, which the controller's least-privilege role does not
// have (it only receives, renews and deletes): here, not in the code `run` loads, so the role stays as
// small as the IAM policy says. Under that role the answer is AccessDenied, reported as a skip: the
// endpoint and the credentials answered, and the controller's first receive checks the rest at start.
import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Config } from '../config/config.js';
import { describeScope, isManaged, leaseNamespace, namespaceScope } from '../config/scope.js';
import { listScopedDeployments } from '../kube/scoped-list.js';
import { type CheckResult, formatResult } from './checks.js';
import { accessProbe, classifyAwsError, fetchFargateProfiles, type PreflightProbes, runPreflight } from './preflight.js';

/** GetQueueAttributes: the queue exists and these credentials reach it. */
export async function queueAttributesProbe(config: Pick<Config, 'aws'>, sqs: Pick<SQSClient, 'send'>): Promise<CheckResult> {
  const subject = config.aws.sqs_queue_url;
  try {
    const out = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: config.aws.sqs_queue_url, AttributeNames: ['QueueArn', 'ApproximateNumberOfMessages', 'RedrivePolicy'] }),
    );
    const a = out.Attributes ?? {};
    const dlq = a.RedrivePolicy ? 'with a dead-letter queue' : 'no dead-letter queue';
    return {
      check: 'queue',
      subject,
      status: 'ok',
      detail: `reachable: ${a.QueueArn ?? 'arn unknown'}, ${a.ApproximateNumberOfMessages ?? '?'} message(s) waiting, ${dlq}`,
    };
  } catch (err) {
    const c = classifyAwsError(err, `queue ${subject}`, 'sqs:GetQueueAttributes, which the controller itself does not need');
    return 'skip' in c ? { check: 'queue', subject, status: 'skipped', detail: c.skip } : { check: 'queue', subject, status: 'failed', detail: c.fail };
  }
}

/**
 * The namespaces whose Fargate profile matters: the listed ones; for "*" or a selector, those that
 * hold a managed Deployment now (a Fargate profile for every namespace of a cluster is not the point).
 */
export async function managedNamespacesFromList(config: Config, kc: KubeConfig): Promise<{ namespaces: string[]; note?: string }> {
  const scope = namespaceScope(config.kubernetes);
  if (scope.kind === 'listed') return { namespaces: [...scope.namespaces] };
  const listed = await listScopedDeployments(kc, scope);
  const namespaces = [...new Set(listed.deployments.filter((d) => isManaged(config, d, listed.inScope)).map((d) => d.metadata?.namespace ?? ''))].sort();
  return { namespaces, note: `${describeScope(scope)}: the namespaces with a managed Deployment now` };
}

export interface DoctorDeps {
  kc: KubeConfig;
  sqs: Pick<SQSClient, 'send'>;
  /** The EKS answer; the real one by default. */
  fargateProfiles?: PreflightProbes['fargateProfiles'];
  out?: (line: string) => void;
}

/** Prints every result; true when none failed (skipped ones do not fail the doctor). */
export async function doctor(config: Config, deps: DoctorDeps): Promise<boolean> {
  const out = deps.out ?? console.log;
  out(`preflight for ${describeScope(namespaceScope(config.kubernetes))} (${config.kubernetes.mode} mode), queue ${config.aws.sqs_queue_url}`);
  const results = await runPreflight(
    config,
    leaseNamespace(config),
    {
      managedNamespaces: () => managedNamespacesFromList(config, deps.kc),
      fargateProfiles: deps.fargateProfiles ?? (() => fetchFargateProfiles(config)),
      queue: () => queueAttributesProbe(config, deps.sqs),
      access: accessProbe(deps.kc),
    },
    (r) => out(formatResult(r)),
  );
  const failed = results.filter((r) => r.status === 'failed').length;
  const skipped = results.filter((r) => r.status === 'skipped').length;
  out(failed === 0 ? `all checks passed${skipped ? ` (${skipped} skipped)` : ''}` : `${failed} check(s) FAILED${skipped ? `, ${skipped} skipped` : ''}`);
  return failed === 0;
}
