// Errors made safe to log. fetch's errors can quote the URL they were given ("Failed to parse URL
// from https://hooks.slack.com/services/…"), and a webhook URL is a credential: anyone holding it
// can post to the channel. So errors are never logged as objects, only as text with secrets cut out.

const REDACTED = '[redacted]';
/** Causes followed before giving up: undici nests a few levels (TypeError <- AggregateError <- Error). */
const MAX_CAUSE_DEPTH = 5;
const MAX_DESCRIPTION_CHARS = 1000;

/**
 * The forms in which a URL may show up in an error: as given, normalised, percent-encoded, and its
 * path with and without the query (the part of a Slack webhook that is the actual token).
 */
export function secretFormsOfUrl(url: string): string[] {
  const forms = new Set<string>([url, encodeURIComponent(url)]);
  if (URL.canParse(url)) {
    const parsed = new URL(url);
    forms.add(parsed.href);
    forms.add(encodeURIComponent(parsed.href));
    if (parsed.pathname.length > 1) {
      forms.add(parsed.pathname + parsed.search);
      forms.add(parsed.pathname);
      // The token alone (last path segment of /services/T…/B…/token), should a message quote just that.
      const last = parsed.pathname.split('/').filter(Boolean).pop();
      if (last && last.length >= 12) forms.add(last);
    }
    if (parsed.search.length > 1) forms.add(parsed.search);
  }
  // Longest first, so a URL is replaced whole rather than leaving its host around a redacted path.
  return [...forms].filter((form) => form.length > 0).sort((a, b) => b.length - a.length);
}

/** `text` with every occurrence of every secret replaced, plus any Slack webhook path whatever its origin. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) out = out.split(secret).join(REDACTED);
  return out.replace(/hooks\.slack(?:-gov)?\.com\/[^\s"'<>)]*/gi, `hooks.slack.com/${REDACTED}`);
}

/** One line about an error and its causes (name, message, code), with secrets redacted. Never throws. */
export function describeError(error: unknown, secrets: readonly string[]): string {
  try {
    const parts: string[] = [];
    let current: unknown = error;
    for (let depth = 0; depth < MAX_CAUSE_DEPTH && current !== undefined && current !== null; depth++) {
      parts.push(describeOne(current));
      if (current instanceof AggregateError && current.errors.length > 0) {
        parts.push(...current.errors.slice(0, 3).map(describeOne));
      }
      current = current instanceof Error ? current.cause : undefined;
    }
    const text = redact(parts.join(' <- '), secrets);
    return text.length > MAX_DESCRIPTION_CHARS ? `${text.slice(0, MAX_DESCRIPTION_CHARS - 1)}…` : text;
  } catch {
    return 'unknown error';
  }
}

function describeOne(value: unknown): string {
  if (!(value instanceof Error)) return typeof value === 'string' ? value : `non-error value (${typeof value})`;
  const code = (value as { code?: unknown }).code;
  const codeText = typeof code === 'string' || typeof code === 'number' ? ` [${code}]` : '';
  return `${value.name}: ${value.message || '(no message)'}${codeText}`;
}
