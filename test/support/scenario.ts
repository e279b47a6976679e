// What every scenario file of the end-to-end and fault suites owns: a namespace, and a queue with the
// EventBridge rule that feeds it. Made before the file's tests, removed after them whether they passed
// or not (after `teardown`, which stops whatever the tests started, so nothing acts on a queue or a
// namespace that is going away).
import { after, before } from 'node:test';
import { ensureQueueAndRule, removeQueueAndRule } from '../../testground/src/aws.js';
import { faultSecrets, type FaultController, type FaultSecrets } from './faults-controller.js';
import type { ScenarioLedger } from './faults-ledger.js';
import { createNamespace, deleteNamespace, uniqueName, type TestGround } from './ground.js';

export interface ScenarioResources {
  readonly namespace: string;
  readonly queueName: string;
  readonly queueUrl: string;
}

export interface ScenarioOptions {
  /** Names the namespace and the queue, so a leftover says which file made it. */
  prefix: string;
  /** Short, so the message a killed controller held comes back soon. */
  visibilityTimeoutSeconds: number;
  teardown?: () => Promise<void>;
  /** Deletion of a namespace with thousands of objects is started, not waited for. */
  awaitNamespaceDeletion?: boolean;
}

/** Registers the file's before and after hooks; the fields are set once `before` has run. */
export function scenarioResources(t: TestGround, o: ScenarioOptions): ScenarioResources {
  const r = { namespace: '', queueName: '', queueUrl: '' };
  before(async () => {
    r.namespace = await createNamespace(t, o.prefix);
    r.queueName = uniqueName(`${o.prefix}q`);
    ({ queueUrl: r.queueUrl } = await ensureQueueAndRule(t.ground, r.queueName, { visibilityTimeoutSeconds: o.visibilityTimeoutSeconds }));
  });
  after(async () => {
    try {
      await o.teardown?.();
    } finally {
      if (r.queueUrl) await removeQueueAndRule(t.ground, r.queueName, r.queueUrl).catch((err) => console.error(`removing queue ${r.queueName}: ${err}`));
      if (r.namespace) {
        const deletion = deleteNamespace(t, r.namespace);
        if (o.awaitNamespaceDeletion !== false) await deletion;
      }
    }
  });
  return r;
}

export interface FaultScenario extends ScenarioResources {
  /** The Slack receiver and AWS key every controller of the file gets (and must never leak). */
  readonly secrets: FaultSecrets;
}

/**
 * A fault-suite file's resources: those of scenarioResources plus its secrets. After its tests the
 * controllers it started are killed, the Slack receiver stopped and the file's figures written.
 */
export function faultScenario(
  t: TestGround,
  ledger: ScenarioLedger,
  o: ScenarioOptions & { controllers: () => Iterable<FaultController | undefined> },
): FaultScenario {
  const s = { secrets: undefined as unknown as FaultSecrets };
  before(async () => {
    s.secrets = await faultSecrets();
  });
  const resources = scenarioResources(t, {
    ...o,
    teardown: async () => {
      try {
        await o.teardown?.();
        for (const c of o.controllers()) await c?.kill('SIGKILL', { scrape: false });
        await s.secrets?.slack.stop();
      } finally {
        ledger.write();
      }
    },
  });
  return {
    get namespace() {
      return resources.namespace;
    },
    get queueName() {
      return resources.queueName;
    },
    get queueUrl() {
      return resources.queueUrl;
    },
    get secrets() {
      return s.secrets;
    },
  };
}
