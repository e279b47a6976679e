// The one owner of "who is moving this Deployment now". A move is one Deployment's trip in one
// direction, from its first patch to the end of its observation:
//   - migration: onto Fargate, and the rollback to spot that may follow a failed rollout;
//   - recovery: back to spot, and the return to Fargate that follows a failed one.
// The rules live here and nowhere else:
//   - start: a Deployment has at most one move in this process; asking for the same kind again joins
//     the move in flight (a second warning for the same Deployment, a repeat delivery, a resume);
//   - supersede: an interruption beats everything else: a recovery, or a rollback to spot (whose
//     nodes are now under a warning too), is told to stand down (its signal aborts; it makes no
//     further write) and the migration starts at once; nothing beats a migration;
//   - resume: the phase annotation says a move is in flight. At start every such Deployment that no
//     move here owns is resumed at once; afterwards a periodic pass resumes one once it has seen it
//     orphaned, at the same resourceVersion, on two passes in a row (so a move that has just ended,
//     and whose last patch the watch has not delivered yet, is not resumed by mistake). This is also
//     what finishes a move whose last patch failed, without a restart.
import type { V1Deployment } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Clock, Timer } from '../clock.js';
import { MANAGED_ANNOTATIONS } from '../state/annotations.js';

/** migration and rollback are the two stages of a move to Fargate; recovery is the move back. */
export type MoveKind = 'migration' | 'rollback' | 'recovery';

/** What a move gets: when to stand down, and how to say it entered its next stage. */
export interface MoveHandle {
  readonly signal: AbortSignal;
  become(kind: MoveKind): void;
}

/** The phase annotation's values: which move, and at which stage, a restart finds in flight. */
export type InFlightPhase = 'migrating' | 'rolling-back' | 'recovering';

/** Why a move's signal aborted. */
export type StandDown = 'superseded' | 'stopping';

export type Started<T> = { joined: boolean; value: T } | { busy: MoveKind };

interface Entry {
  kind: MoveKind;
  value: unknown;
  abort: AbortController;
}

export interface ResyncOptions {
  /** The managed Deployments, from the cache. */
  list: () => V1Deployment[];
  /**
   * Starts the move a phase annotation says is in flight, through the flow that owns it; false when
   * that flow already has it in hand (a resumed recovery waiting for a slot), so nothing is said.
   */
  resume: (d: V1Deployment, phase: InFlightPhase) => boolean;
  intervalMs: number;
}

const PHASES: readonly string[] = ['migrating', 'rolling-back', 'recovering'] satisfies InFlightPhase[];
const keyOf = (d: V1Deployment) => `${d.metadata?.namespace}/${d.metadata?.name}`;

export class MoveRegistry {
  private readonly moves = new Map<string, Entry>();
  /** Deployments the last pass found orphaned, with the resourceVersion it saw. */
  private readonly orphans = new Map<string, string | undefined>();
  private resync?: { options: ResyncOptions; timer: Timer };
  private stopped = false;

  constructor(
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  /** The kind of the move of this Deployment in flight here, if any. */
  current(key: string): MoveKind | undefined {
    return this.moves.get(key)?.kind;
  }

  get size(): number {
    return this.moves.size;
  }

  /**
   * Starts a move of `kind`, or joins the one in flight. `begin` gets the signal that aborts when the
   * move must stand down, and returns what joiners share (`value`) and when the move is over (`done`).
   */
  start<T>(key: string, kind: MoveKind, begin: (move: MoveHandle) => { value: T; done: Promise<unknown> }): Started<T> {
    const existing = this.moves.get(key);
    if (existing?.kind === kind) return { joined: true, value: existing.value as T };
    if (existing && kind !== 'migration') return { busy: existing.kind };
    if (existing) {
      this.log.info({ deployment: key, superseded: existing.kind, by: kind }, `an interruption takes over a ${existing.kind} in flight`);
      existing.abort.abort('superseded' satisfies StandDown);
    }
    const entry: Entry = { kind, value: undefined, abort: new AbortController() };
    if (this.stopped) entry.abort.abort('stopping' satisfies StandDown);
    this.moves.set(key, entry);
    this.orphans.delete(key);
    const { value, done } = begin({
      signal: entry.abort.signal,
      become: (next) => {
        entry.kind = next;
      },
    });
    entry.value = value;
    const end = () => {
      if (this.moves.get(key) === entry) this.moves.delete(key);
    };
    done.then(end, end);
    return { joined: false, value };
  }

  /** Resumes every orphaned move at once, then keeps looking every `intervalMs`. */
  startResync(options: ResyncOptions): void {
    this.resync?.timer.cancel();
    this.resync = { options, timer: this.clock.setRepeating(() => this.pass(false), options.intervalMs) };
    this.pass(true);
  }

  /** Every move's signal aborts (reason `stopping`); no more resumes. */
  stop(): void {
    this.stopped = true;
    this.resync?.timer.cancel();
    this.resync = undefined;
    for (const entry of this.moves.values()) entry.abort.abort('stopping' satisfies StandDown);
  }

  /** One look for orphans: resumed at once when `immediate`, otherwise on their second sighting. */
  pass(immediate: boolean): void {
    if (!this.resync) return;
    const seen = new Set<string>();
    for (const d of this.resync.options.list()) {
      const phase = d.metadata?.annotations?.[MANAGED_ANNOTATIONS.phase];
      if (phase === undefined || !PHASES.includes(phase)) continue;
      const key = keyOf(d);
      if (this.moves.has(key)) continue;
      seen.add(key);
      const version = d.metadata?.resourceVersion;
      if (!immediate && (!this.orphans.has(key) || this.orphans.get(key) !== version)) {
        this.orphans.set(key, version);
        continue;
      }
      this.orphans.delete(key);
      const started = this.resync.options.resume(d, phase as InFlightPhase);
      if (started && !immediate)
        this.log.warn({ deployment: key, phase }, 'the phase annotation says a move is in flight, and no move here owns it; resuming it');
    }
    for (const key of this.orphans.keys()) if (!seen.has(key)) this.orphans.delete(key);
  }
}
