// Alert -> Slack message, one formatter per alert kind. Pure: the clock is passed in, nothing is sent.
// Every message has a header, a section of fields with the key facts, and a context line (cluster,
// event); its `text` says the same in one line for notifications and clients without blocks.

import type { Alert, AlertKind, DeploymentOutcome, DeploymentRef, InterruptionInstance } from './alert.js';
import {
  context,
  escapeMrkdwn,
  fields,
  foldedList,
  header,
  section,
  slackDate,
  SLACK_LIMITS,
  truncate,
  type SlackBlock,
  type SlackMessage,
} from './slack-blocks.js';

export interface FormatContext {
  /** Shown on every message, so one channel can take several clusters' alerts. */
  clusterName?: string;
  /** When the alert was raised: "seconds left" and "next attempt in" are counted from here. */
  now: Date;
}

/** Deployments listed by name before the rest are folded into "…and N more". */
export const MAX_LISTED_DEPLOYMENTS = 20;
/** Instances listed in a field before the rest are folded. */
const MAX_LISTED_INSTANCES = 10;
/** Names quoted in the one-line `text` before the rest are counted. */
const MAX_NAMES_IN_TEXT = 5;

type Formatter<K extends AlertKind> = (alert: Extract<Alert, { kind: K }>, ctx: FormatContext) => SlackMessage;

const FORMATTERS: { [K in AlertKind]: Formatter<K> } = {
  interruption_detected(alert, ctx) {
    const n = alert.instances.length;
    const secondsLeft = Math.round((alert.deadline.getTime() - ctx.now.getTime()) / 1000);
    const timeLeft = secondsLeft >= 0 ? `${secondsLeft} s` : `none: passed ${-secondsLeft} s ago`;
    const left = secondsLeft >= 0 ? `${secondsLeft} s left` : `deadline passed ${-secondsLeft} s ago`;
    const nodes = alert.instances.flatMap((i) => (i.node ? [i.node] : []));
    return message(ctx, {
      title: `:rotating_light: Spot interruption: ${plural(n, 'instance')} to be reclaimed`,
      text:
        `Spot interruption: ${plural(n, 'instance')} (${namesForText(alert.instances.map(instanceLabel))}) ` +
        `to be reclaimed at ${alert.deadline.toISOString()} (${left}); ` +
        `${plural(alert.deployments, 'Deployment')} affected, moving to Fargate`,
      fields: [
        ['Instances', listField(alert.instances.map((i) => `\`${escapeMrkdwn(i.instanceId)}\``))],
        ['Nodes', nodes.length > 0 ? listField(nodes.map((node) => `\`${escapeMrkdwn(node)}\``)) : '_not known yet_'],
        ['Deadline', slackDate(alert.deadline)],
        ['Time left', timeLeft],
        ['Deployments affected', String(alert.deployments)],
      ],
      eventId: alert.eventId,
    });
  },

  migration_started(alert, ctx) {
    const n = alert.deployments.length;
    return message(ctx, {
      title: `:truck: Moving ${plural(n, 'Deployment')} to Fargate`,
      text: `Migration started: moving ${plural(n, 'Deployment')} to Fargate (${namesForText(alert.deployments.map(refName))})`,
      sections: [`*Deployments*\n${foldedList(alert.deployments.map(refLine), MAX_LISTED_DEPLOYMENTS)}`],
      eventId: alert.eventId,
    });
  },

  migration_summary(alert, ctx) {
    return summaryMessage(alert, ctx);
  },

  migration_failed(alert, ctx) {
    const name = refName(alert.deployment);
    return message(ctx, {
      title: `:x: Migration to Fargate failed: ${name}`,
      text: `Migration of ${name} to Fargate failed: ${alert.reason}`,
      fields: [['Deployment', refCode(alert.deployment)]],
      sections: [`*Why*\n${escapeMrkdwn(alert.reason)}`],
      eventId: alert.eventId,
    });
  },

  rollback(alert, ctx) {
    const name = refName(alert.deployment);
    const where = { spot: 'spot nodes', fargate: 'Fargate', none: '' }[alert.to];
    const title =
      alert.to === 'none'
        ? `:leftwards_arrow_with_hook: Rollback of ${name}: no earlier placement to restore`
        : `:leftwards_arrow_with_hook: Rolled back ${name} to ${where}`;
    const target = alert.to === 'none' ? 'nothing: no earlier placement to restore' : where;
    return message(ctx, {
      title,
      text:
        alert.to === 'none'
          ? `Rollback of ${name}: no earlier placement to restore, left as is; it was needed because ${alert.reason}`
          : `Rolled back ${name} to ${target}, because ${alert.reason}`,
      fields: [
        ['Deployment', refCode(alert.deployment)],
        ['Rolled back to', target],
      ],
      sections: [`*Why*\n${escapeMrkdwn(alert.reason)}`],
    });
  },

  template_reverted(alert, ctx) {
    const name = refName(alert.deployment);
    const reapplied = alert.action === 'reapplied';
    return message(ctx, {
      title: reapplied
        ? `:repeat: Template reverted during the move to Fargate: ${name} (re-applied once)`
        : `:no_entry: Template reverted again: move of ${name} to Fargate stopped`,
      text: reapplied
        ? `The pod template of ${name} was put back to spot during its move to Fargate (${alert.detail}); the Fargate patch was re-applied once. Fix: ${alert.fix}`
        : `The pod template of ${name} was put back to spot again (${alert.detail}); the controller does not fight it: the move to Fargate is stopped and the Deployment stays on the spot template. Fix: ${alert.fix}`,
      fields: [
        ['Deployment', refCode(alert.deployment)],
        ['Done', reapplied ? 'Fargate patch re-applied once' : 'move stopped, left on the spot template (state spot)'],
      ],
      sections: [`*What changed*\n${escapeMrkdwn(alert.detail)}`, `*Fix*\n${escapeMrkdwn(alert.fix)}`],
      eventId: alert.eventId,
    });
  },

  health_check_failed(alert, ctx) {
    const name = refName(alert.deployment);
    const last = alert.attempt >= alert.of ? ' (last attempt)' : '';
    return message(ctx, {
      title: `:stethoscope: Health check failed: ${name} (attempt ${alert.attempt} of ${alert.of})`,
      text: `Health check of ${name} failed, attempt ${alert.attempt} of ${alert.of}${last}: ${alert.detail}`,
      fields: [
        ['Deployment', refCode(alert.deployment)],
        ['Attempt', `${alert.attempt} of ${alert.of}${last}`],
      ],
      sections: [`*Detail*\n${escapeMrkdwn(alert.detail)}`],
    });
  },

  recovery_started(alert, ctx) {
    const n = alert.deployments.length;
    return message(ctx, {
      title: `:arrows_counterclockwise: Moving ${plural(n, 'Deployment')} back to spot`,
      text: `Recovery started: moving ${plural(n, 'Deployment')} back to spot (${namesForText(alert.deployments.map(refName))})`,
      sections: [`*Deployments*\n${foldedList(alert.deployments.map(refLine), MAX_LISTED_DEPLOYMENTS)}`],
    });
  },

  recovery_completed(alert, ctx) {
    const name = refName(alert.deployment);
    return message(ctx, {
      title: `:white_check_mark: Back on spot: ${name}`,
      text: `Recovery completed: ${name} is back on spot, in ${humanDuration(alert.durationMs)}`,
      fields: [
        ['Deployment', refCode(alert.deployment)],
        ['Took', humanDuration(alert.durationMs)],
      ],
    });
  },

  recovery_failed(alert, ctx) {
    const name = refName(alert.deployment);
    const next = alert.nextAttemptAt;
    const nextText = next
      ? `next attempt at ${next.toISOString()} (in ${humanDuration(Math.max(0, next.getTime() - ctx.now.getTime()))})`
      : 'no further attempt scheduled';
    return message(ctx, {
      title: `:warning: Recovery to spot failed: ${name}`,
      text: `Recovery of ${name} to spot failed after ${plural(alert.attempts, 'attempt')}: ${alert.reason}; ${nextText}`,
      fields: [
        ['Deployment', refCode(alert.deployment)],
        ['Attempts', String(alert.attempts)],
        ['Next attempt', next ? `${slackDate(next)} (in ${humanDuration(Math.max(0, next.getTime() - ctx.now.getTime()))})` : 'none scheduled'],
      ],
      sections: [`*Why*\n${escapeMrkdwn(alert.reason)}`],
    });
  },
};

/** The Slack message for an alert. Whatever the input, the result is within Slack's limits. */
export function formatSlackMessage(alert: Alert, ctx: FormatContext): SlackMessage {
  const format = FORMATTERS[alert.kind] as Formatter<AlertKind>;
  return format(alert as never, ctx);
}

// ---------------------------------------------------------------------------------------------
// migration_summary

type Outcome = DeploymentRef & DeploymentOutcome;
type Result = DeploymentOutcome['result'];

/** Listing order: what needs a person first, then what is still moving, then the quiet majority. */
const RESULT_ORDER: Readonly<Record<Result, number>> = { failed: 0, in_progress: 1, skipped: 2, migrated: 3 };
const RESULT_WORDS: Readonly<Record<Result, string>> = {
  failed: 'failed',
  in_progress: 'still rolling out',
  skipped: 'skipped',
  migrated: 'migrated',
};

function summaryMessage(alert: Extract<Alert, { kind: 'migration_summary' }>, ctx: FormatContext): SlackMessage {
  const outcomes = [...alert.outcomes].sort(compareOutcomes);
  const counts = countResults(outcomes);
  const total = outcomes.length;
  const rolledBack = outcomes.filter((o) => o.result === 'failed' && o.rolledBack).length;

  let title: string;
  if (total === 0) title = ':information_source: Migration summary: no Deployments to move';
  else if (counts.failed > 0) title = `:warning: Migration summary: ${counts.failed} of ${total} Deployments failed`;
  else if (counts.in_progress > 0)
    title = `:hourglass_flowing_sand: Migration summary: ${counts.migrated} of ${total} on Fargate, ${counts.in_progress} still rolling out`;
  else title = `:white_check_mark: Migration summary: ${counts.migrated} of ${total} Deployments on Fargate`;

  const durations = outcomes.flatMap((o) => (o.result === 'migrated' ? [o.durationMs] : [])).sort((a, b) => a - b);
  const slowest = outcomes.find((o) => o.result === 'migrated');
  const perDeployment =
    durations.length > 0 && slowest?.result === 'migrated'
      ? `median ${humanDuration(median(durations))}, slowest ${humanDuration(slowest.durationMs)} (${refCode(slowest)})`
      : '_none migrated_';

  const fieldPairs: [string, string][] = [
    ['Migrated', String(counts.migrated)],
    ['Skipped', String(counts.skipped)],
    ['Failed', counts.failed > 0 ? `${counts.failed} (${rolledBack} rolled back)` : '0'],
  ];
  if (counts.in_progress > 0) fieldPairs.push(['Still rolling out', String(counts.in_progress)]);
  fieldPairs.push(
    ['Total time', humanDuration(alert.durationMs)],
    ['Time per Deployment', perDeployment],
    ['Instances', listField(alert.instances.map((i) => `\`${escapeMrkdwn(instanceLabel(i))}\``))],
  );

  const failedNames = outcomes.filter((o) => o.result === 'failed').map(refName);
  const list = foldedList(outcomes.map(outcomeLine), MAX_LISTED_DEPLOYMENTS, (shown) => describeCounts(countResults(outcomes.slice(shown)), true));

  return message(ctx, {
    title,
    text:
      `Migration summary: ${describeCounts(counts, false)} of ${plural(total, 'Deployment')} ` +
      `in ${humanDuration(alert.durationMs)}` +
      (failedNames.length > 0 ? `. Failed: ${namesForText(failedNames)}` : ''),
    fields: fieldPairs,
    sections: [
      ...(total > 0 ? [`*Deployments*\n${list}`] : []),
      ...(alert.expectedLate && alert.expectedLate.length > 0 ? [`*Expected late (Fargate launch throttle)*\n${lateList(alert.expectedLate)}`] : []),
    ],
    eventId: alert.eventId,
  });
}

function lateList(late: readonly (DeploymentRef & { why: string })[]): string {
  return foldedList(
    late.map((l) => `:hourglass: ${refCode(l)}: ${escapeMrkdwn(l.why)}`),
    MAX_LISTED_DEPLOYMENTS,
    (shown) => `(${late.length - shown} more expected late)`,
  );
}

function compareOutcomes(a: Outcome, b: Outcome): number {
  const byResult = RESULT_ORDER[a.result] - RESULT_ORDER[b.result];
  if (byResult !== 0) return byResult;
  // Slowest migrations first: they are the ones worth a look.
  if (a.result === 'migrated' && b.result === 'migrated' && a.durationMs !== b.durationMs) return b.durationMs - a.durationMs;
  return refName(a).localeCompare(refName(b));
}

function countResults(outcomes: readonly Outcome[]): Record<Result, number> {
  const counts: Record<Result, number> = { migrated: 0, skipped: 0, failed: 0, in_progress: 0 };
  for (const o of outcomes) counts[o.result]++;
  return counts;
}

/**
 * "198 migrated, 1 skipped, 0 failed" for the text (every count but "still rolling out", which only
 * when some are); "(178 migrated, 2 skipped)" for a fold note, non-zero counts only.
 */
function describeCounts(counts: Record<Result, number>, parenthesised: boolean): string {
  const order: Result[] = ['migrated', 'skipped', 'failed', 'in_progress'];
  const parts = order.filter((r) => counts[r] > 0 || (!parenthesised && r !== 'in_progress')).map((r) => `${counts[r]} ${RESULT_WORDS[r]}`);
  return parenthesised ? `(${parts.join(', ')})` : parts.join(', ');
}

function outcomeLine(o: Outcome): string {
  const name = refCode(o);
  switch (o.result) {
    case 'migrated':
      return `:white_check_mark: ${name} migrated in ${humanDuration(o.durationMs)}`;
    case 'skipped':
      return `:fast_forward: ${name} skipped: ${escapeMrkdwn(o.reason)}${o.detail ? ` (${escapeMrkdwn(o.detail)})` : ''}`;
    case 'failed':
      return `:x: ${name} failed: ${escapeMrkdwn(o.reason)} (${o.rolledBack ? 'rolled back' : 'not rolled back'})`;
    case 'in_progress':
      return `:hourglass_flowing_sand: ${name} still rolling out`;
  }
}

function median(sorted: readonly number[]): number {
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

// ---------------------------------------------------------------------------------------------
// Shared pieces

interface MessageParts {
  /** Plain text (the header is plain_text, so no escaping). */
  title: string;
  /** One line for the notification; escaped here. */
  text: string;
  fields?: [string, string][];
  /** mrkdwn, already escaped. */
  sections?: string[];
  eventId?: string;
}

function message(ctx: FormatContext, parts: MessageParts): SlackMessage {
  const blocks: SlackBlock[] = [header(parts.title)];
  if (parts.fields && parts.fields.length > 0) {
    for (let i = 0; i < parts.fields.length; i += SLACK_LIMITS.fieldsPerSection) {
      blocks.push(fields(parts.fields.slice(i, i + SLACK_LIMITS.fieldsPerSection)));
    }
  }
  for (const text of parts.sections ?? []) blocks.push(section(text));
  const about: string[] = [];
  if (ctx.clusterName) about.push(`Cluster *${escapeMrkdwn(ctx.clusterName)}*`);
  if (parts.eventId) about.push(`Event \`${escapeMrkdwn(parts.eventId)}\``);
  about.push('spot-fargate-orchestrator');
  blocks.push(context([about.join('  ·  ')]));

  const prefix = ctx.clusterName ? `[${ctx.clusterName}] ` : '';
  return {
    text: truncate(escapeMrkdwn(prefix + parts.text), SLACK_LIMITS.fallbackTextChars),
    blocks: blocks.slice(0, SLACK_LIMITS.blocksPerMessage),
  };
}

function refName(ref: DeploymentRef): string {
  return `${ref.namespace}/${ref.name}`;
}

function refCode(ref: DeploymentRef): string {
  return `\`${escapeMrkdwn(refName(ref))}\``;
}

function refLine(ref: DeploymentRef): string {
  return `• ${refCode(ref)}`;
}

function instanceLabel(i: InterruptionInstance): string {
  return i.node ? `${i.instanceId} on ${i.node}` : i.instanceId;
}

/** One value per line in a field, folded to stay within a field's limit. */
function listField(values: readonly string[]): string {
  if (values.length === 0) return '_none_';
  return foldedList(values, MAX_LISTED_INSTANCES, undefined, SLACK_LIMITS.fieldChars - 100);
}

/** "a, b, c and 17 more" for the one-line text. */
function namesForText(names: readonly string[]): string {
  if (names.length === 0) return 'none';
  const shown = names.slice(0, MAX_NAMES_IN_TEXT).map((name) => truncate(name, 120));
  const more = names.length - shown.length;
  return more > 0 ? `${shown.join(', ')} and ${more} more` : shown.join(', ');
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/** "850 ms", "12.3 s", "1 min 32 s", "2 h 5 min": for people, unlike config's Go-style durations. */
export function humanDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return 'unknown';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) {
    const s = Math.round(ms / 100) / 10;
    return s < 60 ? `${s} s` : '1 min';
  }
  const totalSeconds = Math.round(ms / 1000);
  if (totalSeconds < 3600) return joinUnits(Math.floor(totalSeconds / 60), 'min', totalSeconds % 60, 's');
  const totalMinutes = Math.round(ms / 60_000);
  return joinUnits(Math.floor(totalMinutes / 60), 'h', totalMinutes % 60, 'min');
}

/** "1 min 32 s", or "30 min" when the smaller unit is zero. */
function joinUnits(big: number, bigUnit: string, small: number, smallUnit: string): string {
  return small === 0 ? `${big} ${bigUnit}` : `${big} ${bigUnit} ${small} ${smallUnit}`;
}
