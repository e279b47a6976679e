// `spot-orchestrator recover --dry-run`: one pass of the recovery eligibility over a one-time list
// of nodes and Deployments, printed per managed Deployment. Nothing is written.
import { CoreV1Api, type KubeConfig, type V1Deployment, type V1Node } from '@kubernetes/client-node';
import type { ClusterConfig } from '../config/config.js';
import { formatDuration } from '../config/duration.js';
import { describeScope, isManaged, namespaceScope } from '../config/scope.js';
import { messageOf } from '../kube/api.js';
import { listScopedDeployments } from '../kube/scoped-list.js';
import { hmacRecordSigner, type RecordSigner } from '../migration/record-signature.js';
import { MANAGED_ANNOTATIONS } from '../state/annotations.js';
import { describeVerdict, judgePass } from './eligibility.js';

/** The report, as lines; pure, so it is tested without a cluster. */
export function recoveryDryRunReport(
  config: ClusterConfig,
  nodes: readonly V1Node[],
  listed: { deployments: readonly V1Deployment[]; inScope: (namespace: string) => boolean },
  now: Date,
  signer: RecordSigner,
): string[] {
  const managed = listed.deployments.filter((d) => isManaged(config, d, listed.inScope));
  const { capacity, verdicts } = judgePass(managed, nodes, { config, now, signer });
  const r = config.recovery;
  const lines = [
    `recovery dry run at ${now.toISOString()}, ${describeScope(namespaceScope(config.kubernetes))} (${config.kubernetes.mode} mode)`,
    `  recovery.enabled=${r.enabled} cooldown=${formatDuration(r.cooldown)} backoff_base=${formatDuration(r.backoff_base)} max_backoff=${formatDuration(r.max_backoff)} max_concurrent_recoveries=${config.controller.max_concurrent_recoveries}`,
    `  spot capacity: ${capacity.healthy.length} healthy of ${capacity.spotNodes} spot node(s)${
      capacity.healthy.length > 0
        ? ` (${capacity.healthy
            .slice(0, 5)
            .map((n) => n.metadata?.name)
            .join(', ')}${capacity.healthy.length > 5 ? ', …' : ''})`
        : ''
    }`,
    `managed Deployments: ${managed.length}`,
  ];
  const eligible = verdicts.filter((v) => v.verdict.eligible).length;
  for (const { deployment, verdict } of verdicts) {
    const a = deployment.metadata?.annotations ?? {};
    const state = a[MANAGED_ANNOTATIONS.state] ?? 'spot';
    const attempts = a[MANAGED_ANNOTATIONS.failedRecoveryAttempts];
    const facts = [
      `state ${state}`,
      a[MANAGED_ANNOTATIONS.migratedAt] ? `migrated-at ${a[MANAGED_ANNOTATIONS.migratedAt]}` : '',
      attempts && attempts !== '0' ? `failed attempts ${attempts}` : '',
    ]
      .filter(Boolean)
      .join(', ');
    const what = verdict.eligible ? `RECOVER  ${describeVerdict(verdict)}` : `wait     ${describeVerdict(verdict)}`;
    lines.push(`  ${deployment.metadata?.namespace}/${deployment.metadata?.name}: ${what}  [${facts}]`);
    for (const w of verdict.warnings) lines.push(`      warning: ${w}`);
  }
  if (eligible > config.controller.max_concurrent_recoveries) {
    lines.push(`${eligible} would recover; at most ${config.controller.max_concurrent_recoveries} at once, longest on Fargate first (listed first)`);
  } else {
    lines.push(`${eligible} would recover now`);
  }
  return lines;
}

/** Lists nodes and Deployments once and prints the report. */
export async function recoveryDryRun(
  config: ClusterConfig,
  kc: KubeConfig,
  key: () => Promise<Buffer>,
  out: (line: string) => void = console.log,
  now = new Date(),
): Promise<void> {
  const [nodes, listed, signer] = await Promise.all([
    kc.makeApiClient(CoreV1Api).listNode(),
    listScopedDeployments(kc, namespaceScope(config.kubernetes)),
    // Whether a record would be applied depends on its signature: without the key, nothing can be said.
    key().then(hmacRecordSigner, (err: unknown) => {
      throw new Error(`recover --dry-run checks restore records with the controller's key: ${messageOf(err)}`);
    }),
  ]);
  for (const line of recoveryDryRunReport(config, nodes.items, listed, now, signer)) out(line);
}
