import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { describeError, redact, secretFormsOfUrl } from './redact.js';

const URL_ = 'https://hooks.slack.com/services/T0AAAA/B0BBBB/abcdefghijklmnop1234?x=1';

describe('redact', () => {
  const secrets = secretFormsOfUrl(URL_);

  it('removes the URL in every form an error may quote it', () => {
    for (const form of [URL_, encodeURIComponent(URL_), '/services/T0AAAA/B0BBBB/abcdefghijklmnop1234', 'abcdefghijklmnop1234']) {
      const out = redact(`before ${form} after`, secrets);
      assert.ok(!out.includes('abcdefghijklmnop1234'), out);
      assert.match(out, /^before .*\[redacted\].* after$/);
    }
  });

  it('removes any Slack webhook path, even one it was not told about', () => {
    assert.equal(redact('posting to https://hooks.slack.com/services/T1/B2/other failed', []), 'posting to https://hooks.slack.com/[redacted] failed');
  });
});

describe('describeError', () => {
  it('follows causes, keeps codes, and redacts', () => {
    const error = new TypeError(`Failed to parse URL from ${URL_}`, {
      cause: new AggregateError([Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:443'), { code: 'ECONNREFUSED' })], ''),
    });
    const text = describeError(error, secretFormsOfUrl(URL_));
    assert.ok(!text.includes('abcdefghijklmnop1234'), text);
    assert.match(
      text,
      /^TypeError: Failed to parse URL from \[redacted\] <- AggregateError: \(no message\) <- Error: connect ECONNREFUSED 10\.0\.0\.1:443 \[ECONNREFUSED\]/,
    );
  });

  it('copes with values that are not errors', () => {
    assert.equal(describeError('plain string', []), 'plain string');
    assert.equal(describeError(42, []), 'non-error value (number)');
  });
});
