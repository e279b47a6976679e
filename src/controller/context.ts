// Everything a controller part needs, passed in so tests can drive time, clients and faults.
import type { CoreV1Api } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Alerter } from '../alerts/alert.js';
import type { Config } from '../config/config.js';
import type { ClusterView } from '../kube/cluster-view.js';
import type { Recorder } from '../kube/recorder.js';
import type { Metrics } from '../metrics/metrics.js';
import type { DeploymentPatcher } from './patcher.js';
import type { RolloutObserver } from './rollout-observer.js';

export interface ControllerContext {
  config: Config;
  log: Logger;
  now: () => Date;
  view: ClusterView;
  core: CoreV1Api;
  patcher: DeploymentPatcher;
  observer: RolloutObserver;
  recorder: Recorder;
  alerter: Alerter;
  metrics: Metrics;
}
