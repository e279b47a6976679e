import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { V1PodSpec } from '@kubernetes/client-node';

import { fargateRefusal } from './fargate-refusal.js';

const plain = (): V1PodSpec => ({ containers: [{ name: 'web', image: 'nginx:1.27', ports: [{ containerPort: 80 }] }] });

describe('fargateRefusal', () => {
  it('accepts an ordinary pod', () => {
    assert.equal(fargateRefusal(plain()), null);
    assert.equal(fargateRefusal(undefined), null);
  });

  it('names privileged containers and init containers', () => {
    const spec = plain();
    spec.containers[0]!.securityContext = { privileged: true };
    assert.equal(fargateRefusal(spec), 'container "web" is privileged');
    const init = plain();
    init.initContainers = [{ name: 'setup', image: 'busybox', securityContext: { privileged: true } }];
    assert.equal(fargateRefusal(init), 'init container "setup" is privileged');
    const notPrivileged = plain();
    notPrivileged.containers[0]!.securityContext = { privileged: false, runAsNonRoot: true };
    assert.equal(fargateRefusal(notPrivileged), null);
  });

  it('names host namespaces', () => {
    assert.equal(fargateRefusal({ ...plain(), hostNetwork: true }), 'pod uses hostNetwork');
    assert.equal(fargateRefusal({ ...plain(), hostPID: true }), 'pod uses hostPID');
    assert.equal(fargateRefusal({ ...plain(), hostIPC: true }), 'pod uses hostIPC');
    assert.equal(fargateRefusal({ ...plain(), hostNetwork: false, hostPID: false, hostIPC: false }), null);
  });

  it('names host ports', () => {
    const spec = plain();
    spec.containers.push({ name: 'metrics', image: 'exporter', ports: [{ containerPort: 9100, hostPort: 9100 }] });
    assert.equal(fargateRefusal(spec), 'container "metrics" port 9100 uses hostPort 9100');
  });

  it('names hostPath volumes', () => {
    const spec = plain();
    spec.volumes = [
      { name: 'cache', emptyDir: {} },
      { name: 'docker-sock', hostPath: { path: '/var/run/docker.sock' } },
    ];
    assert.equal(fargateRefusal(spec), 'volume "docker-sock" is a hostPath volume (/var/run/docker.sock)');
  });

  it('names GPU resources', () => {
    const spec = plain();
    spec.containers[0]!.resources = { limits: { 'nvidia.com/gpu': '1', cpu: '2' } };
    assert.equal(fargateRefusal(spec), 'container "web" requests GPU resources (nvidia.com/gpu)');
  });

  it('lists every problem', () => {
    const spec: V1PodSpec = {
      hostNetwork: true,
      initContainers: [{ name: 'init', image: 'x', securityContext: { privileged: true } }],
      containers: [{ name: 'agent', image: 'y', ports: [{ containerPort: 53, hostPort: 53 }] }],
      volumes: [{ name: 'root', hostPath: { path: '/' } }],
    };
    assert.equal(
      fargateRefusal(spec),
      'pod uses hostNetwork; init container "init" is privileged; container "agent" port 53 uses hostPort 53; ' + 'volume "root" is a hostPath volume (/)',
    );
  });
});
