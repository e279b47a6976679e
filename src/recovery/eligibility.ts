// Whether a Deployment on Fargate may go back to spot now, and if not why not (and when it may).
// Pure: the caller passes the Deployment, the spot capacity judged once for the whole pass, the
// configuration and the time. The running loop and `recover --dry-run` both use it, so the dry run
// says exactly what the controller would do.
//
// Checks, in this order (the first that fails is the verdict):
//   not_on_fargate          state annotation is not fargate: nothing to recover
//   phase_in_flight         a move (migrating, recovering, rolling-back) is recorded on the Deployment
//   in_flight               this controller is already moving or observing it (not visible in annotations yet)
//   disabled_globally       recovery.enabled is false: a kill switch no annotation overrides
//   disabled_by_annotation  spot-orchestrator/recovery-enabled is false on the Deployment
//   cooldown / backoff      cooldown (annotation or global) since migrated-at, and after N failed
//                           attempts backoff_base x 2^(N-1) (capped at max_backoff) since
//                           last-recovered-at; the later of the two is reported, with its end
//   no_saved_spec           the saved-spec annotation is unreadable: nothing to restore from (a missing
//                           one means the Go original moved it: its convention is restored, see
//                           readRestoreRecord, and the verdict's detail says so)
//   unverified_restore_record  the saved-spec is there but its signature does not verify: someone
//                           other than this controller wrote or changed it, so it is never applied
//   no_spot_capacity        no Ready, schedulable, uncordoned spot node free of interruption and
//                           rebalance annotations anywhere in the cluster
//   no_matching_spot_node   healthy spot nodes exist, but none satisfies the constraints the restore
//                           would put back (nodeSelector, required node affinity, tolerations)
import type { V1Deployment, V1Node } from '@kubernetes/client-node';
import type { ClusterConfig } from '../config/config.js';
import { formatDuration } from '../config/duration.js';
import { type DeploymentSettings, resolveDeploymentSettings } from '../config/overrides.js';
import { healthySpotNodes, isSpotNode } from '../capacity/spot-nodes.js';
import type { RecordSigner } from '../migration/record-signature.js';
import { readRestoreRecord } from '../migration/saved-spec.js';
import { MANAGED_ANNOTATIONS, USER_ANNOTATIONS } from '../state/annotations.js';
import { fits } from '../capacity/node-fit.js';

export const INELIGIBLE_REASONS = [
  'not_on_fargate',
  'phase_in_flight',
  'in_flight',
  'disabled_globally',
  'disabled_by_annotation',
  'cooldown',
  'backoff',
  'no_saved_spec',
  'unverified_restore_record',
  'no_spot_capacity',
  'no_matching_spot_node',
] as const;
export type IneligibleReason = (typeof INELIGIBLE_REASONS)[number];

export type Verdict =
  | {
      eligible: true;
      detail: string;
      /** Healthy spot nodes the restored pods could be scheduled on. */
      candidates: string[];
      /** Annotations that were ignored (bad values) or could not be read; for logs and the dry run. */
      warnings: string[];
    }
  | {
      eligible: false;
      reason: IneligibleReason;
      detail: string;
      /** Set for cooldown and backoff: the earliest time the Deployment may be recovered. */
      nextEligibleAt?: Date;
      warnings: string[];
    };

/** Spot capacity as judged once per pass, for every Deployment of the pass. */
export interface SpotCapacity {
  /** Spot nodes seen, healthy or not. */
  spotNodes: number;
  /** Ready, schedulable, not cordoned, not under an interruption warning or rebalance recommendation. */
  healthy: readonly V1Node[];
}

export function assessSpotCapacity(nodes: readonly V1Node[], compute: ClusterConfig['compute']): SpotCapacity {
  return { spotNodes: nodes.filter((n) => isSpotNode(n, compute)).length, healthy: healthySpotNodes(nodes, compute) };
}

export interface EligibilityInput {
  config: ClusterConfig;
  now: Date;
  capacity: SpotCapacity;
  /** Set when this controller is already moving or observing the Deployment: says what. */
  inFlight?: string;
  /** A restore record that does not verify is never applied. */
  signer: RecordSigner;
  /**
   * `recover --all --now` (uninstall): recovery.enabled, the recovery-enabled annotation, cooldown and
   * backoff are not asked, since no controller will be left to honour them; what is waived is listed
   * in the verdict's warnings. Capacity and the restore record are judged as always.
   */
  waive?: boolean;
}

/** Delay before retry N+1 after N failed attempts: base x 2^(N-1), capped at max_backoff; 0 with no failure. */
export function backoffDelayMs(attempts: number, recovery: Pick<ClusterConfig['recovery'], 'backoff_base' | 'max_backoff'>): number {
  if (!(attempts > 0)) return 0;
  // 2 ** large is Infinity, which the cap absorbs.
  return Math.min(recovery.backoff_base * 2 ** (attempts - 1), recovery.max_backoff);
}

/** The failed-recovery-attempts annotation as a count; anything unreadable counts as 0. */
export function failedAttempts(annotations: Readonly<Record<string, string>> | undefined): number {
  const raw = annotations?.[MANAGED_ANNOTATIONS.failedRecoveryAttempts];
  if (raw === undefined || !/^\d+$/.test(raw.trim())) return 0;
  return Number.parseInt(raw, 10);
}

export function judgeRecovery(d: V1Deployment, input: EligibilityInput): Verdict {
  const { config, now, capacity } = input;
  const a = d.metadata?.annotations ?? {};
  const A = MANAGED_ANNOTATIONS;
  const warnings: string[] = [];
  const no = (reason: IneligibleReason, detail: string, nextEligibleAt?: Date): Verdict => ({
    eligible: false,
    reason,
    detail,
    ...(nextEligibleAt ? { nextEligibleAt } : {}),
    warnings,
  });

  const state = a[A.state];
  if (state !== 'fargate') return no('not_on_fargate', state === undefined ? 'never moved to Fargate' : `state is ${state}`);
  const phase = a[A.phase];
  if (phase !== undefined) return no('phase_in_flight', `a move is in flight (phase ${phase})`);
  if (input.inFlight) return no('in_flight', input.inFlight);

  const { settings, invalid } = resolveDeploymentSettings(config, a);
  warnings.push(...invalid.map((i) => i.message));
  if (input.waive) return judgeCapacity(d, config, input.signer, capacity, warnings, no, waived(config, settings, a, now));
  if (!config.recovery.enabled) return no('disabled_globally', 'recovery.enabled is false');
  if (!settings.recoveryEnabled)
    return no('disabled_by_annotation', `the Deployment has ${USER_ANNOTATIONS.recoveryEnabled}=${a[USER_ANNOTATIONS.recoveryEnabled]}`);

  // Cooldown since the move to Fargate, backoff since the last failed attempt: the later end wins.
  const waits: { reason: 'cooldown' | 'backoff'; until: number; detail: string }[] = [];
  const migratedAt = Date.parse(a[A.migratedAt] ?? '');
  if (Number.isFinite(migratedAt)) {
    const override = a[USER_ANNOTATIONS.recoveryCooldown];
    const fromAnnotation = override !== undefined && override.trim() !== '' && !invalid.some((i) => i.annotation === USER_ANNOTATIONS.recoveryCooldown);
    const cooldownSource = fromAnnotation ? `annotation ${USER_ANNOTATIONS.recoveryCooldown}` : 'recovery.cooldown';
    waits.push({
      reason: 'cooldown',
      until: migratedAt + settings.recoveryCooldown,
      detail: `cooldown ${formatDuration(settings.recoveryCooldown)} (${cooldownSource}) since migrated-at ${a[A.migratedAt]}`,
    });
  } else {
    warnings.push(`${A.migratedAt} is ${a[A.migratedAt] === undefined ? 'missing' : `unreadable (${JSON.stringify(a[A.migratedAt])})`}: no cooldown applied`);
  }
  const attempts = failedAttempts(a);
  if (attempts > 0) {
    const delay = backoffDelayMs(attempts, config.recovery);
    const last = Date.parse(a[A.lastRecoveredAt] ?? '');
    if (Number.isFinite(last)) {
      waits.push({
        reason: 'backoff',
        until: last + delay,
        detail: `backoff ${formatDuration(delay)} after ${attempts} failed attempt(s), since last-recovered-at ${a[A.lastRecoveredAt]}`,
      });
    } else {
      warnings.push(`${attempts} failed attempt(s) but ${A.lastRecoveredAt} is missing or unreadable: no backoff applied`);
    }
  }
  const pending = waits.filter((w) => w.until > now.getTime()).sort((x, y) => y.until - x.until)[0];
  if (pending) {
    const next = new Date(pending.until);
    return no(pending.reason, `${pending.detail}: ${formatDuration(Math.ceil((pending.until - now.getTime()) / 1000) * 1000)} left`, next);
  }

  return judgeCapacity(d, config, input.signer, capacity, warnings, no);
}

/** What `waive` waives for this Deployment, said plainly (empty when nothing would have held it back). */
function waived(
  config: ClusterConfig,
  settings: Pick<DeploymentSettings, 'recoveryEnabled' | 'recoveryCooldown'>,
  a: Record<string, string>,
  now: Date,
): string[] {
  const out: string[] = [];
  if (!config.recovery.enabled) out.push('recovery.enabled is false');
  if (!settings.recoveryEnabled && a[USER_ANNOTATIONS.recoveryEnabled] !== undefined)
    out.push(`${USER_ANNOTATIONS.recoveryEnabled}=${a[USER_ANNOTATIONS.recoveryEnabled]}`);
  const migratedAt = Date.parse(a[MANAGED_ANNOTATIONS.migratedAt] ?? '');
  const cooldown = settings.recoveryCooldown;
  if (Number.isFinite(migratedAt) && migratedAt + cooldown > now.getTime()) out.push(`cooldown (${formatDuration(cooldown)} since migrated-at)`);
  const attempts = failedAttempts(a);
  const last = Date.parse(a[MANAGED_ANNOTATIONS.lastRecoveredAt] ?? '');
  if (attempts > 0 && Number.isFinite(last) && last + backoffDelayMs(attempts, config.recovery) > now.getTime())
    out.push(`backoff after ${attempts} failed attempt(s)`);
  return out.length > 0 ? [`--now: waived ${out.join(', ')}`] : [];
}

/** The restore record, then spot capacity that fits what it would put back. */
function judgeCapacity(
  d: V1Deployment,
  config: ClusterConfig,
  signer: RecordSigner,
  capacity: SpotCapacity,
  warnings: string[],
  no: (reason: IneligibleReason, detail: string) => Verdict,
  notes: readonly string[] = [],
): Verdict {
  warnings.push(...notes);
  const where = `${d.metadata?.namespace ?? ''}/${d.metadata?.name ?? ''}`;
  const saved = readRestoreRecord(d, where, legacyRestoreLabel(config), signer);
  if (!saved.ok) return no(saved.unverified ? 'unverified_restore_record' : 'no_saved_spec', saved.error);
  const legacyNote = saved.source === 'go-original' ? `; ${saved.note}` : '';

  if (capacity.healthy.length === 0) {
    return no('no_spot_capacity', `no healthy spot node (Ready, schedulable, not at risk) among ${capacity.spotNodes} spot node(s)`);
  }
  const candidates = capacity.healthy.filter((n) => fits(n, saved.saved)).map((n) => n.metadata?.name ?? '');
  if (candidates.length === 0) {
    return no(
      'no_matching_spot_node',
      `none of the ${capacity.healthy.length} healthy spot node(s) satisfies the restored constraints${describeConstraints(saved.saved.nodeSelector)}${legacyNote}`,
    );
  }
  return {
    eligible: true,
    detail: `${candidates.length} healthy spot node(s) fit, e.g. ${candidates.slice(0, 3).join(', ')}${legacyNote}`,
    candidates,
    warnings,
  };
}

/** The template label a Deployment moved by the Go original goes back to. */
export function legacyRestoreLabel(config: ClusterConfig): { computeLabelKey: string; spotLabel: string } {
  return { computeLabelKey: config.compute.compute_label_key, spotLabel: config.compute.spot_label };
}

function describeConstraints(nodeSelector: Record<string, string> | undefined): string {
  if (!nodeSelector || Object.keys(nodeSelector).length === 0) return '';
  return ` (nodeSelector ${Object.entries(nodeSelector)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ')})`;
}

export interface PassVerdict {
  deployment: V1Deployment;
  key: string;
  verdict: Verdict;
}

/**
 * One pass: spot capacity judged once from `nodes`, then every Deployment against it. Eligible
 * Deployments come first, longest on Fargate first (they cost the most), then the rest by name.
 */
export function judgePass(
  deployments: readonly V1Deployment[],
  nodes: readonly V1Node[],
  input: Omit<EligibilityInput, 'capacity' | 'inFlight'> & { inFlight?: (key: string) => string | undefined },
): { capacity: SpotCapacity; verdicts: PassVerdict[] } {
  const capacity = assessSpotCapacity(nodes, input.config.compute);
  const verdicts = deployments.map((deployment) => {
    const key = `${deployment.metadata?.namespace ?? ''}/${deployment.metadata?.name ?? ''}`;
    return { deployment, key, verdict: judgeRecovery(deployment, { ...input, capacity, inFlight: input.inFlight?.(key) }) };
  });
  const migratedAt = (d: V1Deployment) => Date.parse(d.metadata?.annotations?.[MANAGED_ANNOTATIONS.migratedAt] ?? '') || 0;
  verdicts.sort((x, y) => {
    if (x.verdict.eligible !== y.verdict.eligible) return x.verdict.eligible ? -1 : 1;
    if (x.verdict.eligible) return migratedAt(x.deployment) - migratedAt(y.deployment) || x.key.localeCompare(y.key);
    return x.key.localeCompare(y.key);
  });
  return { capacity, verdicts };
}

/** One line for logs, Events and the dry run. */
export function describeVerdict(v: Verdict): string {
  if (v.eligible) return `would recover now: ${v.detail}`;
  const next = v.nextEligibleAt ? `; next eligible at ${v.nextEligibleAt.toISOString()}` : '';
  return `not now (${v.reason}): ${v.detail}${next}`;
}
