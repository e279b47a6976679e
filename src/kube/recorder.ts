// Kubernetes Events for every decision, on the Deployment or Node it concerns. A repeat of the same
// event (same object, reason and message) bumps count and lastTimestamp as kubelet's recorder does,
// instead of piling up new objects.
import { hostname } from 'node:os';
import { type Clock, systemClock } from '../clock.js';
import type { CoreV1Api, V1ObjectReference } from '@kubernetes/client-node';
import pLimit from 'p-limit';
import type { Logger } from 'pino';
import { isNotFound, MERGE_PATCH, messageOf } from './api.js';

export type EventType = 'Normal' | 'Warning';

export interface EventTarget {
  kind: 'Deployment' | 'Node';
  name: string;
  namespace?: string;
  uid?: string;
}

export interface Recorder {
  record(target: EventTarget, type: EventType, reason: string, message: string): void;
  /**
   * Writes nothing until `work` settles (Events recorded meanwhile wait): phase 1's patches are the
   * only writes on its critical path, and the Events that describe them follow.
   */
  holdWhile?(work: Promise<unknown>): void;
}

const COMPONENT = 'spot-fargate-orchestrator';
const MAX_MESSAGE = 1024;
export interface EventWriteLimits {
  /**
   * Events are written a few at a time. Phase 1 records one per Deployment; written all at once they
   * would take the API server's in-flight slots (and, under priority and fairness, this identity's
   * share) from the patches they describe.
   */
  writesAtOnce: number;
  /** Past this many waiting, new Events are dropped (and logged): they describe, they do not act. */
  maxPending: number;
}
const DEFAULT_LIMITS: EventWriteLimits = { writesAtOnce: 4, maxPending: 20_000 };

export class EventRecorder implements Recorder {
  private readonly seen = new Map<string, { name: string; namespace: string; count: number }>();
  private readonly limit;
  private dropped = 0;
  private holds = 0;
  private released: Promise<void> = Promise.resolve();
  private release: () => void = () => {};

  constructor(
    private readonly core: CoreV1Api,
    private readonly log: Logger,
    /** Node Events go to this namespace (Nodes are cluster-scoped); kubelet uses default. */
    private readonly nodeEventNamespace = 'default',
    private readonly dryRun = false,
    private readonly limits: EventWriteLimits = DEFAULT_LIMITS,
    private readonly clock: Pick<Clock, 'now'> = systemClock,
    /** Who writes (the pod's name): new-style Events (see write) must name it. */
    private readonly reportingInstance = `${hostname()}-${process.pid}`,
  ) {
    this.limit = pLimit(limits.writesAtOnce);
  }

  /** Events recorded but not yet written. */
  get pending(): number {
    return this.limit.activeCount + this.limit.pendingCount;
  }

  record(target: EventTarget, type: EventType, reason: string, message: string): void {
    if (this.dryRun) return;
    if (this.limit.pendingCount >= this.limits.maxPending) {
      if (this.dropped++ % 1000 === 0) this.log.warn({ reason, dropped: this.dropped }, 'too many Kubernetes Events waiting to be written; dropping');
      return;
    }
    void this.limit(async () => {
      await this.released;
      await this.write(target, type, reason, message.slice(0, MAX_MESSAGE));
    }).catch((err) =>
      this.log.warn({ err: messageOf(err), reason, object: `${target.kind}/${target.namespace ?? ''}/${target.name}` }, 'could not record a Kubernetes Event'),
    );
  }

  holdWhile(work: Promise<unknown>): void {
    if (this.holds++ === 0) this.released = new Promise<void>((resolve) => (this.release = resolve));
    const done = () => {
      if (--this.holds === 0) this.release();
    };
    work.then(done, done);
  }

  private async write(target: EventTarget, type: EventType, reason: string, message: string): Promise<void> {
    const namespace = target.namespace ?? this.nodeEventNamespace;
    const key = `${target.kind}/${namespace}/${target.name}/${target.uid ?? ''}/${reason}/${message}`;
    const now = this.clock.now();
    const previous = this.seen.get(key);
    if (previous) {
      previous.count++;
      try {
        await this.core.patchNamespacedEvent({ name: previous.name, namespace, body: { count: previous.count, lastTimestamp: now } }, MERGE_PATCH);
        return;
      } catch (err) {
        if (!isNotFound(err)) throw err;
        this.seen.delete(key); // expired (events have a TTL); write a fresh one
      }
    }
    const involvedObject: V1ObjectReference = {
      kind: target.kind,
      name: target.name,
      namespace: target.namespace,
      uid: target.uid,
      apiVersion: target.kind === 'Deployment' ? 'apps/v1' : 'v1',
    };
    const created = await this.core.createNamespacedEvent({
      namespace,
      body: {
        metadata: { generateName: `${target.name}.`, namespace },
        involvedObject,
        type,
        reason,
        message,
        source: { component: COMPONENT },
        reportingComponent: COMPONENT,
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
        // The API server takes an Event about a cluster-scoped object outside `default` (that is,
        // in kube-system) only as a new-style Event: eventTime, reportingInstance and action set.
        ...(target.namespace === undefined && namespace !== 'default' ? newStyleFields(now, this.reportingInstance, reason) : {}),
      },
    });
    this.seen.set(key, { name: created.metadata!.name!, namespace, count: 1 });
    if (this.seen.size > 10_000) this.seen.delete(this.seen.keys().next().value!);
  }
}

/**
 * eventTime is a MicroTime, which the API server parses with exactly six fractional digits; the
 * client's serializer would write a Date with three, so it goes as the string the server expects.
 */
function newStyleFields(now: Date, reportingInstance: string, reason: string): { eventTime: Date; reportingInstance: string; action: string } {
  const micro = `${now.toISOString().slice(0, -1)}000Z`;
  return { eventTime: micro as unknown as Date, reportingInstance: reportingInstance.slice(0, 128), action: reason.slice(0, 128) };
}
