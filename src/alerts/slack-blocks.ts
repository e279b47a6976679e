// The little of Slack's Block Kit that alerts use, with Slack's limits enforced where text is made,
// so no alert, however long its names or reasons, can produce a message Slack rejects.

/** Slack's documented limits (Block Kit reference); a message over any of them is refused with invalid_blocks. */
export const SLACK_LIMITS = {
  blocksPerMessage: 50,
  headerChars: 150,
  sectionTextChars: 3000,
  fieldsPerSection: 10,
  fieldChars: 2000,
  contextElements: 10,
  /** Per text element of a context block. */
  contextChars: 2000,
  /** Slack truncates the top-level text past 40 000; notifications show far less, so keep it short. */
  fallbackTextChars: 3000,
} as const;

export interface PlainText {
  type: 'plain_text';
  text: string;
  emoji?: boolean;
}

export interface MrkdwnText {
  type: 'mrkdwn';
  text: string;
}

export type SlackBlock =
  | { type: 'header'; text: PlainText }
  | { type: 'section'; text?: MrkdwnText; fields?: MrkdwnText[] }
  | { type: 'context'; elements: MrkdwnText[] }
  | { type: 'divider' };

/** What an incoming webhook takes: `text` is the notification and the fallback where blocks do not render. */
export interface SlackMessage {
  text: string;
  blocks: SlackBlock[];
}

/** Cuts text to at most `max` characters (code points, so an emoji is never split), marking the cut. */
export function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  const chars = Array.from(text);
  if (chars.length <= max) return text;
  return `${chars.slice(0, Math.max(0, max - 1)).join('')}…`;
}

/** Slack's mrkdwn treats only &, < and > as control characters (links, mentions, dates). */
export function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function header(text: string): SlackBlock {
  return { type: 'header', text: { type: 'plain_text', text: truncate(text, SLACK_LIMITS.headerChars), emoji: true } };
}

/** `text` is mrkdwn, already escaped by the caller where it holds outside input. */
export function section(text: string): SlackBlock {
  return { type: 'section', text: { type: 'mrkdwn', text: truncate(text, SLACK_LIMITS.sectionTextChars) } };
}

/** Label/value pairs shown in two columns; values are mrkdwn, already escaped. */
export function fields(pairs: readonly (readonly [label: string, value: string])[]): SlackBlock {
  return {
    type: 'section',
    fields: pairs.slice(0, SLACK_LIMITS.fieldsPerSection).map(([label, value]) => ({
      type: 'mrkdwn',
      text: truncate(`*${label}*\n${value}`, SLACK_LIMITS.fieldChars),
    })),
  };
}

export function context(texts: readonly string[]): SlackBlock {
  return {
    type: 'context',
    elements: texts.slice(0, SLACK_LIMITS.contextElements).map((text) => ({ type: 'mrkdwn', text: truncate(text, SLACK_LIMITS.contextChars) })),
  };
}

/**
 * A timestamp Slack shows in each reader's own time zone, e.g. "Mar 14, 2025 at 09:02:00";
 * clients that cannot render it show the ISO time after the "|".
 */
export function slackDate(date: Date): string {
  const seconds = Math.floor(date.getTime() / 1000);
  return `<!date^${seconds}^{date_short_pretty} at {time_secs}|${date.toISOString()}>`;
}

/** Longest a single listed line or the fold line may be, so one long reason cannot crowd out the rest. */
const MAX_LINE_CHARS = 300;

/**
 * Lines, as many as fit in one section's text and at most `maxLines`; the rest folded into
 * "…and N more", followed by `foldNote(shown)` when given (`shown` is how many lines were listed, so
 * the note can describe the hidden tail). Lines are mrkdwn, already escaped.
 */
export function foldedList(
  lines: readonly string[],
  maxLines: number,
  foldNote?: (shown: number) => string,
  maxChars: number = SLACK_LIMITS.sectionTextChars,
): string {
  const shown: string[] = [];
  let used = 0;
  for (const [index, line] of lines.entries()) {
    if (shown.length >= maxLines) break;
    const cut = truncate(line, MAX_LINE_CHARS);
    const isLast = index === lines.length - 1;
    // Unless this is the last line, leave room for the fold line after it.
    const budget = isLast ? maxChars : maxChars - MAX_LINE_CHARS - 1;
    const cost = cut.length + (shown.length > 0 ? 1 : 0);
    if (used + cost > budget) break;
    used += cost;
    shown.push(cut);
  }
  const hidden = lines.length - shown.length;
  if (hidden > 0) {
    const note = foldNote ? ` ${foldNote(shown.length)}` : '';
    shown.push(truncate(`…and ${hidden} more${note}`, MAX_LINE_CHARS));
  }
  return shown.join('\n');
}
