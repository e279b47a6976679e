// `spot-orchestrator recover --all --now`, the uninstall path: every managed Deployment on Fargate
// goes back to spot where spot capacity fits it, through the same trip the recovery loop takes
// (recovery-flow.ts: the restore patch with maxUnavailable 0, the rollout observed and verified, the
// Fargate template put back on a failure), with cooldown, backoff and recovery-enabled waived since
// no controller will be left to honour them. Then the controller's annotations go from the
// Deployments at rest on spot, and its marks (annotations, and the taint, label and cordon it
// recorded adding) from every node.
//
// Order: Deployments first, nodes last. Capacity is judged with the marks still on, so nothing is
// moved onto a node under a warning; a Deployment left on Fargate for want of capacity is judged
// again, without the marks, by a second run.
//
// Pure planning (planRecoverAll, planForget, leaseHolder) is separate from the run (recoverAllNow),
// whose API calls come in through its dependencies.
import type { V1Deployment, V1Lease, V1Node } from '@kubernetes/client-node';
import pLimit from 'p-limit';
import type { RecordSigner } from '../migration/record-signature.js';
import type { ClusterConfig } from '../config/config.js';
import { describeScope, isManaged } from '../config/scope.js';
import { describeClearMarks, type NodePatch, planClearMarks } from '../controller/node-marks.js';
import { type JsonPatchOp, pointer } from '../migration/json-patch.js';
import type { ControllerContext } from '../moves/context.js';
import { MANAGED_ANNOTATIONS } from '../state/annotations.js';
import { describeVerdict, judgePass, type Verdict } from './eligibility.js';
import type { RecoveryReport } from './recovery-flow.js';

export interface RecoverAllPlan {
  /** On Fargate, and spot capacity fits them: moved back, longest on Fargate first. */
  recover: { key: string; verdict: Verdict }[];
  /** On Fargate and cannot go back now, with why. */
  blocked: { key: string; why: string }[];
  /** Not on Fargate: nothing to move. */
  onSpot: string[];
}

/** Which managed Deployments go back now, which cannot (and why), which are on spot already. */
export function planRecoverAll(
  managed: readonly V1Deployment[],
  nodes: readonly V1Node[],
  config: ClusterConfig,
  now: Date,
  signer: RecordSigner,
): RecoverAllPlan {
  const plan: RecoverAllPlan = { recover: [], blocked: [], onSpot: [] };
  for (const { key, verdict } of judgePass(managed, nodes, { config, now, waive: true, signer }).verdicts) {
    if (verdict.eligible) plan.recover.push({ key, verdict });
    else if (verdict.reason === 'not_on_fargate') plan.onSpot.push(key);
    else plan.blocked.push({ key, why: whyLeft(verdict) });
  }
  return plan;
}

/** Why a Deployment stays on Fargate, in the terms of what the operator can do about it. */
export function whyLeft(verdict: Verdict): string {
  if (verdict.eligible) return describeVerdict(verdict);
  switch (verdict.reason) {
    case 'no_spot_capacity':
    case 'no_matching_spot_node':
      return `no spot capacity fits: ${verdict.detail}`;
    case 'phase_in_flight':
    case 'in_flight':
      return `${verdict.detail}: a controller is still moving it, or stopped in the middle of it; let the controller finish (start it again if it is stopped), then run this again`;
    case 'no_saved_spec':
      return `no restore record to go back by (${verdict.detail}): restore its scheduling by hand`;
    case 'unverified_restore_record':
      return `its restore record was not written by this controller (${verdict.detail}): restore its scheduling by hand`;
    default:
      return describeVerdict(verdict);
  }
}

/**
 * Removes the controller's annotations from a Deployment at rest on spot, so nothing of it is left
 * once uninstalled. Skipped (undefined) while it is on Fargate or a move is in flight: those
 * annotations are what bring it back. The user's own annotations (opt-in, overrides) stay.
 */
export function planForget(d: V1Deployment): JsonPatchOp[] | undefined {
  const a = d.metadata?.annotations ?? {};
  if (a[MANAGED_ANNOTATIONS.state] === 'fargate' || a[MANAGED_ANNOTATIONS.phase] !== undefined) return undefined;
  const present = Object.values(MANAGED_ANNOTATIONS).filter((k) => a[k] !== undefined);
  if (present.length === 0) return undefined;
  const rv = d.metadata?.resourceVersion;
  return [
    ...(rv === undefined ? [] : [{ op: 'test' as const, path: pointer('metadata', 'resourceVersion'), value: rv }]),
    ...present.map((k) => ({ op: 'remove' as const, path: pointer('metadata', 'annotations', k) })),
  ];
}

/** The identity holding the controller's Lease now (held and not expired), if any. */
export function leaseHolder(lease: V1Lease | undefined, now: Date): string | undefined {
  const spec = lease?.spec;
  if (!spec?.holderIdentity) return undefined;
  const renewedAt = spec.renewTime ? new Date(spec.renewTime).getTime() : 0;
  return renewedAt + (spec.leaseDurationSeconds ?? 0) * 1000 > now.getTime() ? spec.holderIdentity : undefined;
}

export interface RecoverAllDeps {
  /** With its caches synced. */
  ctx: Pick<ControllerContext, 'config' | 'view' | 'patcher' | 'clock' | 'signer'>;
  /** One Deployment's trip back (RecoveryFlow.recover with waive). */
  recover: (key: string) => Promise<RecoveryReport>;
  /** Writes a node patch, planned again from a fresh read on a conflict (NodeMarker.write). */
  writeNode: (node: V1Node, plan: (node: V1Node) => NodePatch | undefined, what: string) => Promise<boolean>;
  out: (line: string) => void;
}

export interface RecoverAllResult {
  /** Every managed Deployment on spot and every node free of the controller's marks. */
  ok: boolean;
  recovered: number;
  leftOnFargate: number;
  nodesCleared: number;
  nodesFailed: number;
}

export async function recoverAllNow(deps: RecoverAllDeps): Promise<RecoverAllResult> {
  const { ctx, out } = deps;
  const { config, view } = ctx;
  const now = ctx.clock.now();
  const managed = view.listDeployments().filter((d) => isManaged(config, d, view.inScope));
  const plan = planRecoverAll(managed, view.listNodes(), config, now, ctx.signer);
  const limit = config.controller.max_concurrent_recoveries;
  out(
    `recover --all --now at ${now.toISOString()}, ${describeScope(view.scope)} (${config.kubernetes.mode} mode): ${managed.length} managed Deployment(s), ${
      plan.recover.length + plan.blocked.length
    } on Fargate; moving ${plan.recover.length} back, at most ${limit} at once`,
  );
  const result: RecoverAllResult = { ok: true, recovered: 0, leftOnFargate: plan.blocked.length, nodesCleared: 0, nodesFailed: 0 };
  for (const { key, why } of plan.blocked) out(`  ${key}: LEFT ON FARGATE: ${why}`);

  const forget = async (key: string): Promise<string> => {
    const [namespace, name] = key.split('/') as [string, string];
    const done = await ctx.patcher.apply(namespace, name, undefined, (d) => {
      const ops = planForget(d);
      return ops ? { ops } : { skip: 'nothing to remove' };
    });
    if (done.outcome === 'patched') return "; the controller's annotations removed";
    if (done.outcome === 'error') {
      result.ok = false;
      return `; could not remove the controller's annotations: ${done.error}`;
    }
    return '';
  };

  const run = pLimit(limit);
  await Promise.all([
    ...plan.onSpot.map((key) => run(async () => out(`  ${key}: on spot already${await forget(key)}`))),
    ...plan.recover.map(({ key, verdict }) =>
      run(async () => {
        const report = await deps.recover(key);
        if (report.result === 'recovered') {
          result.recovered++;
          const waived = verdict.warnings.filter((w) => w.startsWith('--now')).map((w) => ` (${w})`);
          out(`  ${key}: back on spot, ${report.detail}${waived.join('')}${await forget(key)}`);
          return;
        }
        result.leftOnFargate++;
        out(`  ${key}: LEFT ON FARGATE: ${describeFailure(report)}`);
      }),
    ),
  ]);
  if (result.leftOnFargate > 0) result.ok = false;

  out('nodes:');
  let untouched = 0;
  for (const node of view.listNodes()) {
    const patch = planClearMarks(node);
    if (!patch) {
      untouched++;
      continue;
    }
    const name = node.metadata?.name ?? '';
    if (await deps.writeNode(node, planClearMarks, 'remove the controller marks')) {
      result.nodesCleared++;
      out(`  ${name}: removed ${describeClearMarks(patch)}`);
    } else {
      result.nodesFailed++;
      result.ok = false;
      out(`  ${name}: FAILED to remove ${describeClearMarks(patch)} (see the log line "could not remove the controller marks")`);
    }
  }
  out(`  ${untouched} other node(s) carried nothing of the controller's`);
  out(
    result.ok
      ? `done: every managed Deployment is on spot, and no node carries a mark of the controller`
      : `NOT DONE: ${result.leftOnFargate} Deployment(s) left on Fargate, ${result.nodesFailed} node(s) still marked; see the lines above`,
  );
  return result;
}

function describeFailure(report: RecoveryReport): string {
  switch (report.result) {
    case 'rolled_back':
      return `rollout failed (${report.detail}); the Fargate template is back and healthy`;
    case 'failed':
      return `rollout failed and could not be undone cleanly: ${report.detail}`;
    case 'preempted':
      return `an interruption took it over: ${report.detail}`;
    case 'cancelled':
      return `stopped before it finished: ${report.detail}`;
    default:
      return report.detail;
  }
}
