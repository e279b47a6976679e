// Doing nothing: the pods die with their instances and the ReplicaSets replace them afterwards,
// where capacity is left.
import type { Strategy } from '../lib/strategy.js';

export function noneStrategy(): Strategy {
  return {
    name: 'none',
    describe: 'nothing: pods die with the instance; ReplicaSets recreate them on what capacity is left',
    patches: false,
    async act() {},
    async finish() {
      return { notes: [] };
    },
  };
}
