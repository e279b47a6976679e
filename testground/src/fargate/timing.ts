/** How long EKS takes from a Fargate pod's arrival to its micro-VM running it (real time, unscaled). */
export const FARGATE_PROVISIONING_MS = 45_000;
