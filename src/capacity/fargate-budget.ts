// What AWS's Fargate launch throttle allows inside a warning. Fargate pod launches draw from a token
// bucket per account and Region (for accounts that launch only EKS pods: a burst of 20, refilled at
// 20 a second), and a launched pod takes about a minute to be Ready. Moving whole Deployments, every
// replica is one launch, so when an interruption asks for more launches than the bucket gives before
// the deadline, the Deployments launched last are Ready too late: this forecast says which.
// It assumes the bucket is full at the warning and that nothing else in the account launches; the
// real outcome can only be worse, never better.

export interface LaunchBudget {
  /** Launches the bucket holds when full. */
  burst: number;
  /** Launches it refills per second. */
  ratePerSecond: number;
  /** From a launch to the pod Ready. */
  startEstimateMs: number;
}

export interface LaunchDemand {
  key: string;
  /** One launch per replica: the whole Deployment rolls onto Fargate. */
  launches: number;
}

export interface DeploymentForecast {
  key: string;
  launches: number;
  /** When its last replica is expected Ready, from the warning. */
  readyAfterMs: number;
  /** Every replica expected Ready before the deadline. */
  whole: boolean;
}

export interface LaunchForecast {
  launchesNeeded: number;
  /** The launches whose pods can be Ready before the deadline. */
  launchesInTime: number;
  expectedWhole: number;
  expectedLate: number;
  deployments: DeploymentForecast[];
}

/** When the launch with this index (0-based, in launch order) gets its token, from the warning. */
export function tokenAtMs(index: number, budget: Pick<LaunchBudget, 'burst' | 'ratePerSecond'>): number {
  if (index < budget.burst) return 0;
  return ((index - budget.burst + 1) / budget.ratePerSecond) * 1000;
}

/** The forecast for launching `demands` in this order, with `windowMs` left until the deadline. */
export function forecastLaunches(demands: readonly LaunchDemand[], budget: LaunchBudget, windowMs: number): LaunchForecast {
  let launched = 0;
  const deployments = demands.map((d): DeploymentForecast => {
    launched += Math.max(0, d.launches);
    const readyAfterMs = d.launches > 0 ? tokenAtMs(launched - 1, budget) + budget.startEstimateMs : 0;
    return { key: d.key, launches: d.launches, readyAfterMs, whole: readyAfterMs <= windowMs };
  });
  // The last launch whose pod is Ready in time: token time <= window - start estimate.
  const lastToken = windowMs - budget.startEstimateMs;
  const launchesInTime = lastToken < 0 ? 0 : Math.min(launched, budget.burst + Math.floor((lastToken / 1000) * budget.ratePerSecond + 1e-9));
  const expectedWhole = deployments.filter((d) => d.whole).length;
  return { launchesNeeded: launched, launchesInTime, expectedWhole, expectedLate: deployments.length - expectedWhole, deployments };
}
