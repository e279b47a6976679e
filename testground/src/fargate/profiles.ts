// Fargate profiles as EKS evaluates them: a pod runs on Fargate when its namespace matches a
// selector's namespace (EKS allows * and ? wildcards) and its labels include all of the selector's.
import { readFileSync } from 'node:fs';

export interface FargateSelector {
  namespace: string;
  labels?: Record<string, string>;
}

export interface FargateProfile {
  name: string;
  selectors: FargateSelector[];
}

export const DEFAULT_PROFILES_FILE = new URL('../../fargate-profiles.json', import.meta.url).pathname;

export function loadProfiles(path = DEFAULT_PROFILES_FILE): FargateProfile[] {
  return JSON.parse(readFileSync(path, 'utf8')) as FargateProfile[];
}

function globToRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

export function matchingProfile(profiles: FargateProfile[], namespace: string, labels: Record<string, string> | undefined): FargateProfile | undefined {
  return profiles.find((profile) =>
    profile.selectors.some((s) => globToRegExp(s.namespace).test(namespace) && Object.entries(s.labels ?? {}).every(([k, v]) => labels?.[k] === v)),
  );
}
