// Everything a move needs, passed in so tests can drive time, clients and faults.
import type { CoreV1Api } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Alerter } from '../alerts/alert.js';
import type { Clock } from '../clock.js';
import type { ClusterConfig } from '../config/config.js';
import type { ClusterView } from '../kube/cluster-view.js';
import type { Recorder } from '../kube/recorder.js';
import type { Metrics } from '../metrics/metrics.js';
import type { RecordSigner } from '../migration/record-signature.js';
import type { DeploymentPatcher } from './patcher.js';
import type { MoveRegistry } from './registry.js';
import type { RolloutObserver } from './rollout-observer.js';

export interface ControllerContext {
  config: ClusterConfig;
  log: Logger;
  clock: Clock;
  view: ClusterView;
  core: CoreV1Api;
  patcher: DeploymentPatcher;
  observer: RolloutObserver;
  /** Who is moving which Deployment: the one place a move starts, joins or stands down. */
  moves: MoveRegistry;
  recorder: Recorder;
  alerter: Alerter;
  metrics: Metrics;
  /** Signs the restore records the moves write, and verifies those they read. */
  signer: RecordSigner;
}
