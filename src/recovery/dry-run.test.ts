import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Deployment, V1Node } from '@kubernetes/client-node';
import { loadConfig } from '../config/load.js';
import { formatTimestamp, planFinish, planMigration } from '../migration/plan.js';
import { TEST_SIGNER, migrationInput, serverApply, spotDeployment } from '../migration/test-fixtures.js';
import { MANAGED_ANNOTATIONS as A, USER_ANNOTATIONS } from '../state/annotations.js';
import { recoveryDryRunReport } from './dry-run.js';

const config = loadConfig({ env: { SQS_QUEUE_URL: 'http://localhost:9324/000000000000/q', MODE: 'namespace', NAMESPACE: 'prod', RECOVERY_COOLDOWN: '30m' } });
const MIGRATED = new Date('2025-03-14T09:00:00Z');
const NOW = new Date('2025-03-14T10:00:00Z');

function deployment(name: string, o: { fargate?: boolean; optIn?: boolean; annotations?: Record<string, string> } = {}): V1Deployment {
  let d = spotDeployment();
  if (o.fargate !== false) {
    const plan = planMigration(d, migrationInput({ now: MIGRATED }));
    d = serverApply(d, plan.action === 'patch' ? plan.ops : []);
    const finish = planFinish(d, { kind: 'migrated' }, TEST_SIGNER);
    d = serverApply(d, 'ops' in finish ? finish.ops : []);
  }
  d.metadata!.name = name;
  if (o.optIn === false) delete d.metadata!.annotations!['spot-orchestrator/enabled'];
  Object.assign(d.metadata!.annotations!, o.annotations);
  return d;
}

const spotNode: V1Node = {
  metadata: { name: 'spot-a-0', labels: { 'compute-type': 'spot', 'kubernetes.io/arch': 'amd64' } },
  status: { conditions: [{ type: 'Ready', status: 'True' }] },
};

/** As listed in the one managed namespace. */
const inDefault = (deployments: V1Deployment[]) => ({ deployments, inScope: (ns: string) => ns === config.kubernetes.namespace });

describe('recover --dry-run report', () => {
  it('says per managed Deployment whether it would recover now, and why or why not', () => {
    const lines = recoveryDryRunReport(
      config,
      [spotNode],
      inDefault([
        deployment('api'),
        deployment('web', { annotations: { [USER_ANNOTATIONS.recoveryCooldown]: '2h' } }),
        deployment('worker', { annotations: { [A.failedRecoveryAttempts]: '2', [A.lastRecoveredAt]: formatTimestamp(new Date(NOW.getTime() - 10 * 60_000)) } }),
        deployment('cache', { fargate: false }),
        deployment('other', { optIn: false }),
      ]),
      NOW,
      TEST_SIGNER,
    );
    const text = lines.join('\n');
    assert.match(text, /spot capacity: 1 healthy of 1 spot node\(s\) \(spot-a-0\)/);
    assert.match(text, /managed Deployments: 4/);
    assert.match(text, / {2}prod\/api: RECOVER {2}would recover now: 1 healthy spot node\(s\) fit, e\.g\. spot-a-0/);
    assert.match(
      text,
      / {2}prod\/web: wait {5}not now \(cooldown\): cooldown 2h0m0s \(annotation spot-orchestrator\/recovery-cooldown\).*; next eligible at 2025-03-14T11:00:00\.000Z/,
    );
    assert.match(
      text,
      / {2}prod\/worker: wait {5}not now \(backoff\): backoff 30m0s after 2 failed attempt\(s\).*next eligible at 2025-03-14T10:20:00\.000Z.*failed attempts 2/,
    );
    assert.match(text, / {2}prod\/cache: wait {5}not now \(not_on_fargate\)/);
    assert.doesNotMatch(text, /other/);
    assert.equal(lines.at(-1), '1 would recover now');
    // Eligible first.
    assert.ok(lines.findIndex((l) => l.includes(' prod/api:')) < lines.findIndex((l) => l.includes(' prod/cache:')));
  });

  it('without healthy spot capacity nothing would recover', () => {
    const text = recoveryDryRunReport(config, [], inDefault([deployment('api')]), NOW, TEST_SIGNER).join('\n');
    assert.match(text, /api: wait {5}not now \(no_spot_capacity\): no healthy spot node/);
    assert.match(text, /0 would recover now$/);
  });
});
