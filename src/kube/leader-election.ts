// Leader election on a coordination.k8s.io Lease, as client-go does it: the holder renews every
// retry period; a standby takes the Lease once renewals have stopped for a lease duration; a
// leader that cannot renew within the renew deadline stops leading. Writes are merge patches that
// carry the resourceVersion they were computed from, so two candidates never both win.
import type { CoordinationV1Api, V1Lease } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { type Clock, systemClock } from '../clock.js';
import { isConflict, isNotFound, MERGE_PATCH, messageOf } from './api.js';

export interface LeaderElectionOptions {
  api: CoordinationV1Api;
  name: string;
  namespace: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  log: Logger;
  /** Every time reading and every wait (default: the system clock). */
  clock?: Clock;
}

/** The API server wants MicroTime with exactly six fractional digits; Date#toISOString gives three. */
export function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export class LeaderElector {
  private stopped = false;
  private leading = false;
  /** Aborted by stop(), which wakes a sleeping loop. */
  private readonly stopping = new AbortController();
  private readonly clock: Clock;

  constructor(private readonly o: LeaderElectionOptions) {
    this.clock = o.clock ?? systemClock;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  private sleep(ms: number): Promise<void> {
    return this.clock.sleep(ms, this.stopping.signal);
  }

  /**
   * Campaigns until elected, calls `lead` and keeps renewing; resolves when leadership is lost
   * (renew deadline passed) or stop() was called. `lead` must not block.
   */
  async run(lead: () => void): Promise<'lost' | 'stopped'> {
    while (!this.stopped && !(await this.tryAcquireOrRenew())) await this.sleep(this.o.retryPeriodMs);
    if (this.stopped) return 'stopped';
    this.leading = true;
    this.o.log.info({ lease: `${this.o.namespace}/${this.o.name}`, identity: this.o.identity }, 'became the leader');
    lead();
    let lastRenew = this.clock.now().getTime();
    while (!this.stopped) {
      await this.sleep(this.o.retryPeriodMs);
      if (this.stopped) break;
      // A renewal that hangs must not keep this replica leading: a standby takes the Lease once it
      // expires. The attempt gets until the deadline plus one retry period, the latest a failure is
      // noticed anyway, which config loading keeps short of the lease duration.
      const left = Math.max(0, lastRenew + this.o.renewDeadlineMs - this.clock.now().getTime());
      const renewed = await this.renewWithin(left + this.o.retryPeriodMs);
      if (renewed) lastRenew = this.clock.now().getTime();
      else if (this.clock.now().getTime() - lastRenew > this.o.renewDeadlineMs) {
        this.leading = false;
        this.o.log.error({ lease: this.o.name }, 'could not renew the lease in time; no longer the leader');
        return 'lost';
      }
    }
    return 'stopped';
  }

  /** One renewal attempt, given up (false) once `ms` have passed without an answer. */
  private async renewWithin(ms: number): Promise<boolean> {
    const timeUp = new AbortController();
    const deadline = this.clock.sleep(ms, timeUp.signal).then(() => false);
    try {
      return await Promise.race([this.tryAcquireOrRenew(), deadline]);
    } finally {
      timeUp.abort();
    }
  }

  /** Stops campaigning; a leader hands the Lease back so a standby takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    if (!this.leading) return;
    this.leading = false;
    try {
      const lease = await this.o.api.readNamespacedLease({ name: this.o.name, namespace: this.o.namespace });
      if (lease.spec?.holderIdentity !== this.o.identity) return;
      await this.o.api.patchNamespacedLease(
        {
          name: this.o.name,
          namespace: this.o.namespace,
          body: { metadata: { resourceVersion: lease.metadata?.resourceVersion }, spec: { holderIdentity: null, leaseDurationSeconds: 1 } },
        },
        MERGE_PATCH,
      );
      this.o.log.info({ lease: this.o.name }, 'released the lease');
    } catch (err) {
      this.o.log.warn({ err: messageOf(err) }, 'could not release the lease; a standby takes over when it expires');
    }
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { api, name, namespace, identity } = this.o;
    const now = this.clock.now();
    try {
      let lease: V1Lease;
      try {
        lease = await api.readNamespacedLease({ name, namespace });
      } catch (err) {
        if (!isNotFound(err)) throw err;
        lease = await api.createNamespacedLease({ namespace, body: { metadata: { name, namespace }, spec: {} } });
      }
      const spec = lease.spec ?? {};
      const holder = spec.holderIdentity;
      const renewedAt = spec.renewTime ? new Date(spec.renewTime).getTime() : 0;
      const expiresAt = renewedAt + (spec.leaseDurationSeconds ?? 0) * 1000;
      if (holder && holder !== identity && expiresAt > now.getTime()) return false;
      const takingOver = holder !== identity;
      await api.patchNamespacedLease(
        {
          name,
          namespace,
          body: {
            metadata: { resourceVersion: lease.metadata?.resourceVersion },
            spec: {
              holderIdentity: identity,
              leaseDurationSeconds: Math.ceil(this.o.leaseDurationMs / 1000),
              renewTime: microTime(now),
              ...(takingOver ? { acquireTime: microTime(now), leaseTransitions: (spec.leaseTransitions ?? 0) + (holder ? 1 : 0) } : {}),
            },
          },
        },
        MERGE_PATCH,
      );
      return true;
    } catch (err) {
      if (!isConflict(err)) this.o.log.warn({ err: messageOf(err) }, 'leader election: could not read or write the lease');
      return false;
    }
  }
}
