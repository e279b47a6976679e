// Benchmark settings: command-line flags, each with a BENCH_* environment variable behind it
// (flags win). The ground's time scale is not one of them: it is fixed when the ground starts
// (TESTGROUND_TIME_SCALE at cluster-up) and read from ground.json.
import { parseArgs } from 'node:util';
import { imageCommand } from '../../testground/src/image.js';

export const STRATEGIES = ['controller', 'sequential', 'drain', 'none'] as const;
/** Strategies that run only when named: the controller with triage off (MIGRATION_TRIAGE=false, arrival order). */
export const OPTIONAL_STRATEGIES = ['controller-no-triage'] as const;
export type StrategyName = (typeof STRATEGIES)[number] | (typeof OPTIONAL_STRATEGIES)[number];
const KNOWN_STRATEGIES: readonly string[] = [...STRATEGIES, ...OPTIONAL_STRATEGIES];

/** Node flags for the controller; image: they are the Dockerfile's (what ships). */
export interface NodeFlagSet {
  flags: string[];
  image: boolean;
}

export interface BenchOptions {
  /** Deployments in the main scenario. */
  n: number;
  /** Spot nodes interrupted at once. */
  k: number;
  /** Spot nodes in each strategy's fresh pool. */
  nodes: number;
  /**
   * Pods each spot node holds: a number, or `packed` for the scenario's pods over its nodes plus 5 %,
   * as a cluster autoscaler leaves a pool; then the survivors cannot take in the warned nodes' pods.
   */
  nodePods: number | 'packed';
  replicasMin: number;
  replicasMax: number;
  /** Share of Deployments with a Service (and a PodDisruptionBudget, maxUnavailable 1). */
  serviceShare: number;
  strategies: StrategyName[];
  floor: boolean;
  /** Single events for the detection latency; 0 skips it. */
  detection: number;
  /** N values of the scaling series (scalingReplicas replicas each); empty skips it. */
  scaling: number[];
  /** Replicas of each Deployment in the scaling series (1: N pods; 3: the 3N pods of issue 17's sizing). */
  scalingReplicas: number;
  /**
   * Each scaling point is run once per value: its Deployments spread round-robin over that many
   * namespaces, the controller watching every namespace ("*") when there are several.
   */
  scalingNamespaces: number[];
  /**
   * The node flags the controller runs with in the scaling series: one or more sets, `;` between
   * them, each point run once per set in the order given (so `image;X;X;image` interleaves two
   * pairs). `image` is the Dockerfile ENTRYPOINT's flags (what ships), `none` is no flags.
   */
  nodeFlags: NodeFlagSet[];
  /** More environment for every controller process the bench starts (for example glibc's MALLOC_ tunables). */
  controllerEnv: Record<string, string>;
  /**
   * Scaling series: this many seconds after the warning, force two full collections in the controller
   * (over its inspector, bench/lib/collect.ts) and record memory around them; null: never. The rest of
   * that point's run follows a collection it would not have had, so compare its peak only with others
   * measured the same way.
   */
  collectAtSeconds: number | null;
  /**
   * After the strategies and the floor: the controller alone on the main scenario at this many
   * Deployments, observed until its phase 1 is done, then the floor for as many patches (0 skips it).
   */
  phase1N: number;
  /**
   * With phase1N: after the floor, the floor with rollouts (the same patches to running Deployments
   * of the main scenario, each starting its rollout), so the page tells the controller's own cost
   * from the rollouts' (floor.ts).
   */
  rolloutFloor: boolean;
  /** With phase1N: a third floor, with rollouts while the controller watches and acts on nothing. */
  watchedFloor: boolean;
  /** Observation continues this long after the deadline, in simulated seconds (scaled). */
  tailSeconds: number;
  /** Bounded concurrency of the controller's patches (MAX_CONCURRENT_PATCHES) and of the floor. */
  patchConcurrency: number;
  /** How the controller runs: the build (as shipped) or through tsx. */
  controllerRuntime: 'build' | 'tsx';
  /**
   * Who the controller and the floor are to the API server: the shipped ServiceAccount under the
   * shipped FlowSchema, or the admin certificate (exempt from API Priority and Fairness).
   */
  identity: 'service-account' | 'admin';
  outDir: string;
  plots: boolean;
  /** Where to write the README fragment; '' for nowhere. */
  readmeFragment: string;
  /** The command line to print in the report (make passes its own). */
  command: string;
}

const FLAGS = {
  n: { env: 'BENCH_N', default: '1000' },
  k: { env: 'BENCH_K', default: '10' },
  nodes: { env: 'BENCH_NODES', default: '20' },
  'node-pods': { env: 'BENCH_NODE_PODS', default: '250' },
  replicas: { env: 'BENCH_REPLICAS', default: '1-5' },
  'service-share': { env: 'BENCH_SERVICE_SHARE', default: '0.25' },
  strategies: { env: 'BENCH_STRATEGIES', default: STRATEGIES.join(',') },
  floor: { env: 'BENCH_FLOOR', default: '1' },
  detection: { env: 'BENCH_DETECTION', default: '20' },
  scaling: { env: 'BENCH_SCALING', default: '10,100,1000,5000' },
  'scaling-replicas': { env: 'BENCH_SCALING_REPLICAS', default: '1' },
  'scaling-namespaces': { env: 'BENCH_SCALING_NAMESPACES', default: '1' },
  'node-flags': { env: 'BENCH_NODE_FLAGS', default: 'image' },
  'controller-env': { env: 'BENCH_CONTROLLER_ENV', default: '' },
  'collect-at': { env: 'BENCH_COLLECT_AT', default: '' },
  'phase1-n': { env: 'BENCH_PHASE1_N', default: '0' },
  'rollout-floor': { env: 'BENCH_ROLLOUT_FLOOR', default: '1' },
  'watched-floor': { env: 'BENCH_WATCHED_FLOOR', default: '0' },
  tail: { env: 'BENCH_TAIL', default: '60' },
  'patch-concurrency': { env: 'BENCH_PATCH_CONCURRENCY', default: '50' },
  controller: { env: 'BENCH_CONTROLLER', default: 'build' },
  identity: { env: 'BENCH_IDENTITY', default: 'service-account' },
  out: { env: 'BENCH_OUT', default: 'bench/results' },
  plots: { env: 'BENCH_PLOTS', default: '1' },
  'readme-fragment': { env: 'BENCH_README_FRAGMENT', default: '' },
  command: { env: 'BENCH_COMMAND', default: '' },
} as const;

type Flag = keyof typeof FLAGS;

export const USAGE = `usage: node --import tsx bench/run.ts [--flag value]...
${Object.entries(FLAGS)
  .map(([flag, f]) => `  --${flag.padEnd(18)} ${f.env.padEnd(24)} default ${f.default === '' ? '(none)' : f.default}`)
  .join('\n')}
Flags win over the environment variables. The ground's time scale comes from its ground.json.`;

function positiveInt(name: string, text: string, min = 1): number {
  const v = Number(text);
  if (!Number.isInteger(v) || v < min) throw new Error(`--${name} must be an integer >= ${min}, got "${text}"`);
  return v;
}

/** `image;none;--max-semi-space-size=2 --foo`: the image's flags, none, and those two. */
function nodeFlagSets(text: string): NodeFlagSet[] {
  return text.split(';').map((part) => {
    const set = part.trim();
    if (set === 'image') return { flags: imageCommand().nodeFlags, image: true };
    if (set === 'none') return { flags: [], image: false };
    const flags = set.split(/\s+/);
    if (set === '' || !flags.every((f) => f.startsWith('--'))) {
      throw new Error(`--node-flags: "${set}" is not image, none or node flags (--flag[=value] ...), in "${text}"`);
    }
    return { flags, image: false };
  });
}

/** `A=1 B=two`: variables for the controller's environment. */
export function environmentPairs(name: string, text: string): Record<string, string> {
  const pairs: Record<string, string> = {};
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(word);
    if (!m) throw new Error(`--${name}: "${word}" is not NAME=value, in "${text}"`);
    pairs[m[1]!] = m[2]!;
  }
  return pairs;
}

function bool(name: string, text: string): boolean {
  if (['1', 'true', 'yes', 'on'].includes(text)) return true;
  if (['0', 'false', 'no', 'off', ''].includes(text)) return false;
  throw new Error(`--${name} must be 1 or 0, got "${text}"`);
}

export function parseOptions(argv: string[], env: Record<string, string | undefined> = process.env): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: Object.fromEntries(Object.keys(FLAGS).map((k) => [k, { type: 'string' as const }])),
    strict: true,
    allowPositionals: false,
  });
  const get = (flag: Flag): string => (values[flag] as string | undefined) ?? env[FLAGS[flag].env] ?? FLAGS[flag].default;

  const [minText, maxText = minText] = get('replicas').split('-');
  const replicasMin = positiveInt('replicas', minText ?? '');
  const replicasMax = positiveInt('replicas', maxText ?? '');
  if (replicasMax < replicasMin) throw new Error(`--replicas: ${replicasMax} < ${replicasMin}`);
  const strategies = get('strategies')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const s of strategies) if (!KNOWN_STRATEGIES.includes(s)) throw new Error(`--strategies: unknown strategy "${s}" (${KNOWN_STRATEGIES.join(', ')})`);
  const share = Number(get('service-share'));
  if (!(share >= 0 && share <= 1)) throw new Error(`--service-share must be between 0 and 1, got "${get('service-share')}"`);
  const runtime = get('controller');
  if (runtime !== 'build' && runtime !== 'tsx') throw new Error(`--controller must be build or tsx, got "${runtime}"`);
  const identity = get('identity');
  if (identity !== 'service-account' && identity !== 'admin') throw new Error(`--identity must be service-account or admin, got "${identity}"`);
  const n = positiveInt('n', get('n'));
  const nodes = positiveInt('nodes', get('nodes'));
  const k = positiveInt('k', get('k'));
  if (k > nodes) throw new Error(`--k (${k}) cannot exceed --nodes (${nodes})`);
  const tail = Number(get('tail'));
  if (!(tail >= 0)) throw new Error(`--tail must be >= 0 seconds, got "${get('tail')}"`);
  const scalingText = get('scaling').trim();
  const nodePodsText = get('node-pods').trim();
  return {
    n,
    k,
    nodes,
    nodePods: nodePodsText === 'packed' ? 'packed' : positiveInt('node-pods', nodePodsText),
    replicasMin,
    replicasMax,
    serviceShare: share,
    strategies: strategies as StrategyName[],
    floor: bool('floor', get('floor')),
    detection: positiveInt('detection', get('detection'), 0),
    scaling: scalingText === '' ? [] : scalingText.split(',').map((s) => positiveInt('scaling', s.trim())),
    scalingReplicas: positiveInt('scaling-replicas', get('scaling-replicas')),
    scalingNamespaces: get('scaling-namespaces')
      .split(',')
      .map((s) => positiveInt('scaling-namespaces', s.trim())),
    nodeFlags: nodeFlagSets(get('node-flags')),
    controllerEnv: environmentPairs('controller-env', get('controller-env')),
    collectAtSeconds: get('collect-at') === '' ? null : positiveInt('collect-at', get('collect-at')),
    phase1N: positiveInt('phase1-n', get('phase1-n'), 0),
    rolloutFloor: bool('rollout-floor', get('rollout-floor')),
    watchedFloor: bool('watched-floor', get('watched-floor')),
    tailSeconds: tail,
    patchConcurrency: positiveInt('patch-concurrency', get('patch-concurrency')),
    controllerRuntime: runtime,
    identity,
    outDir: get('out'),
    plots: bool('plots', get('plots')),
    readmeFragment: get('readme-fragment'),
    command: get('command'),
  };
}

/** Replica count of the i-th Deployment: min..max in turn, so the mix is the same in every run. */
export function replicasOf(o: Pick<BenchOptions, 'replicasMin' | 'replicasMax'>, i: number): number {
  return o.replicasMin + (i % (o.replicasMax - o.replicasMin + 1));
}

/** Whether the i-th Deployment gets a Service and a PodDisruptionBudget. */
export function hasService(o: Pick<BenchOptions, 'serviceShare'>, i: number): boolean {
  if (o.serviceShare <= 0) return false;
  return Math.floor((i + 1) * o.serviceShare) > Math.floor(i * o.serviceShare);
}

/** Pods per node for a pool of `nodes` holding `pods`: `packed` leaves 5 % room, as an autoscaled pool would. */
export function podsPerNode(nodePods: number | 'packed' | undefined, pods: number, nodes: number): number | undefined {
  if (nodePods !== 'packed') return nodePods;
  return Math.max(1, Math.ceil((pods / Math.max(1, nodes)) * 1.05));
}

/** Pods of the main scenario: the replicas of its N Deployments. */
export function mainScenarioPods(o: Pick<BenchOptions, 'n' | 'replicasMin' | 'replicasMax'>): number {
  let pods = 0;
  for (let i = 0; i < o.n; i++) pods += replicasOf(o, i);
  return pods;
}
