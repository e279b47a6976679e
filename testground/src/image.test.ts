import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { imageCommand } from './image.js';

const dockerfile = (finalStage: string) => `ARG NODE_IMAGE=node:24-bookworm-slim
FROM \${NODE_IMAGE} AS build
ENV BUILD_ONLY=1
RUN npm run build
FROM \${NODE_IMAGE}
${finalStage}
ENTRYPOINT ["/usr/bin/tini", "--", "node", "--max-semi-space-size=16", "dist/src/cli.js"]
CMD ["run"]
`;

describe('the image command read from the Dockerfile', () => {
  it('takes the final stage environment, one pair or several to a line', () => {
    const image = imageCommand(dockerfile('ENV NODE_ENV=production\nENV MALLOC_ARENA_MAX=2 MALLOC_TRIM_THRESHOLD_=131072'));
    assert.deepEqual(image.env, { NODE_ENV: 'production', MALLOC_ARENA_MAX: '2', MALLOC_TRIM_THRESHOLD_: '131072' });
    assert.deepEqual(image.nodeFlags, ['--max-semi-space-size=16']);
    assert.deepEqual([image.script, ...image.cmd], ['dist/src/cli.js', 'run']);
  });

  it('has no environment when the final stage sets none (a build stage ENV is not the image)', () => {
    assert.deepEqual(imageCommand(dockerfile('WORKDIR /app')).env, {});
  });

  it('refuses values it would have to guess at', () => {
    assert.throws(() => imageCommand(dockerfile('ENV GREETING="hello world"')), /ENV GREETING="hello world".*plain values/);
    assert.throws(() => imageCommand(dockerfile('ENV LEGACY value')), /plain values/);
  });
});
