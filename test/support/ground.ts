// Helpers the end-to-end tests share: clients for the running ground, throwaway namespaces, waits.
import { randomBytes } from 'node:crypto';
import type { V1Deployment, V1Pod } from '@kubernetes/client-node';
import { groundClients, loadGround, type Ground, type GroundClients } from '../../testground/src/ground.js';

export interface TestGround extends GroundClients {
  ground: Ground;
}

export function testGround(): TestGround {
  const ground = loadGround();
  return { ground, ...groundClients(ground.kubeconfig) };
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`;
}

export async function createNamespace(t: TestGround, prefix: string): Promise<string> {
  const name = uniqueName(prefix);
  await t.core.createNamespace({ body: { metadata: { name } } });
  return name;
}

export async function deleteNamespace(t: TestGround, name: string): Promise<void> {
  await t.core.deleteNamespace({ name }).catch(() => undefined);
}

/** Polls `probe` until it returns a value other than undefined; the error names what was awaited. */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface AppOptions {
  namespace: string;
  name: string;
  replicas?: number;
  labels?: Record<string, string>;
  /** Pod template labels beyond app=<name>. */
  podLabels?: Record<string, string>;
  podAnnotations?: Record<string, string>;
  annotations?: Record<string, string>;
  nodeSelector?: Record<string, string>;
  spec?: Partial<NonNullable<NonNullable<V1Deployment['spec']>['template']['spec']>>;
  strategy?: NonNullable<V1Deployment['spec']>['strategy'];
}

/** A Deployment of a do-nothing container; KWOK runs it, so the image is never pulled. */
export function appDeployment(o: AppOptions): V1Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: o.name, namespace: o.namespace, labels: { app: o.name, ...o.labels }, annotations: o.annotations },
    spec: {
      replicas: o.replicas ?? 2,
      selector: { matchLabels: { app: o.name } },
      strategy: o.strategy,
      template: {
        metadata: { labels: { app: o.name, ...o.podLabels }, annotations: o.podAnnotations },
        spec: {
          nodeSelector: o.nodeSelector,
          containers: [{ name: 'app', image: 'registry.example/app:1.0', ports: [{ containerPort: 8080 }] }],
          ...o.spec,
        },
      },
    },
  };
}

export function isPodReady(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

export async function podsOf(t: TestGround, namespace: string, app: string): Promise<V1Pod[]> {
  return (await t.core.listNamespacedPod({ namespace, labelSelector: `app=${app}` })).items;
}
