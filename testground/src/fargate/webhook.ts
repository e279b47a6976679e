// The mutating admission webhook EKS registers for Fargate: a pod created in a namespace and with
// labels that a Fargate profile selects is handed to the fargate-scheduler instead of the default one.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AdmissionregistrationV1Api, V1Pod } from '@kubernetes/client-node';
import { matchingProfile, type FargateProfile } from './profiles.js';

export const FARGATE_SCHEDULER = 'fargate-scheduler';
export const WEBHOOK_NAME = 'fargate-pod-webhook.testground.spot-fargate.io';
const CONFIGURATION_NAME = 'eks-fargate-pod-webhook';

interface AdmissionRequest {
  uid: string;
  namespace?: string;
  object?: V1Pod;
}

export function admit(profiles: FargateProfile[], request: AdmissionRequest) {
  const pod = request.object;
  const namespace = request.namespace ?? pod?.metadata?.namespace ?? 'default';
  const profile = pod ? matchingProfile(profiles, namespace, pod.metadata?.labels) : undefined;
  const response: Record<string, unknown> = { uid: request.uid, allowed: true };
  if (profile && pod?.spec?.schedulerName !== FARGATE_SCHEDULER) {
    const patch = [
      { op: 'add', path: '/spec/schedulerName', value: FARGATE_SCHEDULER },
      { op: 'add', path: '/metadata/annotations', value: { ...pod?.metadata?.annotations, 'eks.amazonaws.com/fargate-profile': profile.name } },
    ];
    response.patchType = 'JSONPatch';
    response.patch = Buffer.from(JSON.stringify(patch)).toString('base64');
  }
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response };
}

export function startWebhookServer(opts: { port: number; certFile: string; keyFile: string; profiles: FargateProfile[] }): Promise<Server> {
  const server = createServer({ cert: readFileSync(opts.certFile), key: readFileSync(opts.keyFile) }, (req, res) => {
    if (req.method === 'GET' && req.url === '/healthz') {
      res.writeHead(200).end('ok');
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        const review = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { request: AdmissionRequest };
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(admit(opts.profiles, review.request)));
      } catch (err) {
        res.writeHead(400).end(`bad AdmissionReview: ${(err as Error).message}`);
      }
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, '127.0.0.1', () => resolve(server));
  });
}

export async function registerWebhook(api: AdmissionregistrationV1Api, opts: { port: number; caFile: string }): Promise<void> {
  const body = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: CONFIGURATION_NAME },
    webhooks: [
      {
        name: WEBHOOK_NAME,
        admissionReviewVersions: ['v1'],
        sideEffects: 'None',
        failurePolicy: 'Fail',
        timeoutSeconds: 10,
        clientConfig: {
          url: `https://127.0.0.1:${opts.port}/mutate`,
          caBundle: readFileSync(opts.caFile).toString('base64'),
        },
        rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'], scope: 'Namespaced' }],
        namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system'] }] },
      },
    ],
  };
  try {
    await api.createMutatingWebhookConfiguration({ body });
  } catch (err) {
    if ((err as { code?: number }).code !== 409) throw err;
    await api.replaceMutatingWebhookConfiguration({
      name: CONFIGURATION_NAME,
      body: {
        ...body,
        metadata: { ...body.metadata, resourceVersion: (await api.readMutatingWebhookConfiguration({ name: CONFIGURATION_NAME })).metadata?.resourceVersion },
      },
    });
  }
}
