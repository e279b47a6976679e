import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseLabelSelector, selectorMatches } from './label-selector.js';

const parse = (text: string) => {
  const parsed = parseLabelSelector(text);
  assert.ok(parsed.ok, `${text}: ${parsed.ok ? '' : parsed.reason}`);
  return parsed.selector;
};

describe('label selectors', () => {
  it('reads every requirement form and writes it back in canonical form', () => {
    const s = parse(' team = payments , env==prod,tier!=batch, zone in ( b ,a,a), app notin (x), example.com/owned ,! legacy ');
    assert.equal(s.text, 'team=payments,env=prod,tier!=batch,zone in (a,b),app notin (x),example.com/owned,!legacy');
    assert.deepEqual(parse(s.text), s, 'the canonical form reads back the same');
  });

  it('matches labels as the API server does', () => {
    const s = parse('team=payments,tier!=batch,zone in (a,b),!legacy');
    assert.equal(selectorMatches(s, { team: 'payments', zone: 'a' }), true);
    assert.equal(selectorMatches(s, { team: 'payments', zone: 'a', tier: 'batch' }), false, '!= refuses the value');
    assert.equal(selectorMatches(s, { team: 'payments', zone: 'c' }), false, 'in needs one of the values');
    assert.equal(selectorMatches(s, { team: 'payments' }), false, 'in needs the key');
    assert.equal(selectorMatches(s, { team: 'payments', zone: 'b', legacy: '' }), false, '!key refuses the key, whatever its value');
    assert.equal(selectorMatches(parse('app notin (x),tier!=batch'), {}), true, 'notin and != hold without the key');
    assert.equal(selectorMatches(parse('owned'), { owned: '' }), true, 'a bare key needs only the key');
    assert.equal(selectorMatches(parse('owned'), undefined), false);
    assert.equal(selectorMatches(parse('toString'), {}), false, 'an inherited property is no label');
  });

  it('refuses what is not a selector, saying what is wrong', () => {
    const reasonOf = (text: string) => {
      const parsed = parseLabelSelector(text);
      assert.equal(parsed.ok, false, text);
      return parsed.ok ? '' : parsed.reason;
    };
    assert.match(reasonOf('team=payments,'), /empty requirement/);
    assert.match(reasonOf('zone in (a,b'), /parentheses/);
    assert.match(reasonOf('zone in ()'), /one or more values/);
    assert.match(reasonOf('zone in (a,b c)'), /"b c" in .* is not a label value/);
    assert.match(reasonOf('replicas > 3'), /operators < and > are not supported/);
    assert.match(reasonOf('team=pay ments'), /is not a requirement/);
    assert.match(reasonOf(`team=${'x'.repeat(64)}`), /is not a requirement/, 'a value is 63 characters at most');
    assert.match(reasonOf(`${'p'.repeat(254)}/team`), /prefix .* longer than 253/);
  });
});
