// Writes what node-marks.ts plans. A plan that carries the node's resourceVersion and meets a newer
// node (409) is made again from a fresh read, so another writer's taint or label is never lost.
import type { V1Node } from '@kubernetes/client-node';
import { MERGE_PATCH, isConflict, messageOf, withRetry } from '../kube/api.js';
import type { ControllerContext } from '../moves/context.js';
import type { NodePatch } from './node-marks.js';

const CONFLICT_ATTEMPTS = 5;

export class NodeMarker {
  constructor(private readonly ctx: Pick<ControllerContext, 'core' | 'log' | 'config'>) {}

  /**
   * Patches the node with plan(node), planning again from a fresh read on a conflict. True when it
   * was written (or there was nothing to write, or this is a dry run); false after logging why not.
   */
  async write(node: V1Node, plan: (node: V1Node) => NodePatch | undefined, what: string): Promise<boolean> {
    const name = node.metadata!.name!;
    let current = node;
    for (let attempt = 1; ; attempt++) {
      const body = plan(current);
      if (body === undefined) return true;
      if (this.ctx.config.controller.dry_run) {
        this.ctx.log.info({ node: name, patch: body }, `dry run: would ${what}`);
        return true;
      }
      try {
        await withRetry(() => this.ctx.core.patchNode({ name, body }, MERGE_PATCH));
        return true;
      } catch (err) {
        let failure = err;
        if (isConflict(err) && attempt < CONFLICT_ATTEMPTS) {
          try {
            current = await withRetry(() => this.ctx.core.readNode({ name }));
            continue;
          } catch (readErr) {
            failure = readErr;
          }
        }
        this.ctx.log.warn({ node: name, err: messageOf(failure) }, `could not ${what}`);
        return false;
      }
    }
  }
}
