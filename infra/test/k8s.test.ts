import t from 'tap';
import { readFileSync } from 'node:fs';
import { EnvSchema, loadConfig, type AppName } from '@iotsupport/config';
import { validateAgainstSchema } from '../src/k8s-schemas.js';
import { renderKustomization, type K8sObject } from '../src/kustomize.js';
import { repoPath } from '../src/paths.js';
import { containerEnv, containerPort, podSpec, secretExample, type Container } from '../src/pod-env.js';

/**
 * The kustomize overlays, rendered as `kubectl apply -k` would, validated against the Kubernetes
 * schemas offline, and cross-checked against the code: the config schema, the listeners, the
 * shutdown budget, the topology and who may reach the callback listener.
 */
const OVERLAYS = { 'shared-gateway': 'shared', 'sidecar-gateway': 'per-pod' } as const;
const APPS: AppName[] = ['api', 'ingest', 'worker'];
const SCHEMA_VARIABLES = Object.keys(EnvSchema.properties);

/** The Secret as an operator fills it in (the example leaves the secrets empty). */
const secret = {
  ...secretExample(),
  SSE_CALLBACK_SECRET: 'a'.repeat(64),
  SECRET_KEY: 'b'.repeat(64),
  IDP_ADMIN_CLIENT_ID: 'iotsupport-admin',
  IDP_ADMIN_CLIENT_SECRET: 'c'.repeat(32),
};

const appOf = (c: Container) => /^iotsupport\/(api|ingest|worker)(:|$)/.exec(c.image)?.[1] as AppName | undefined;
const byKind = (objects: K8sObject[], kind: string) => objects.filter((o) => o.kind === kind);
const named = (objects: K8sObject[], kind: string, name: string) => {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`${kind} ${name} is not rendered`);
  return found as K8sObject & { spec: Record<string, any> };
};
const deploymentOf = (objects: K8sObject[], app: string) => named(objects, 'Deployment', `iotsupport-${app}`);
const appContainer = (objects: K8sObject[], app: AppName) => podSpec(deploymentOf(objects, app)).containers.find((c) => appOf(c) === app)!;

/** Labels a selector (matchLabels / matchExpressions In) selects. */
function selects(selector: { matchLabels?: Record<string, string>; matchExpressions?: Array<{ key: string; operator: string; values?: string[] }> }, labels: Record<string, string>): boolean {
  const byLabels = Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
  const byExpressions = (selector.matchExpressions ?? []).every((e) => e.operator === 'In' && e.values!.includes(labels[e.key] ?? ''));
  return byLabels && byExpressions;
}

t.test('the Secret example names only variables of the config schema', async (t) => {
  for (const key of Object.keys(secretExample())) t.ok(SCHEMA_VARIABLES.includes(key), `${key} is a config variable`);
});

for (const [overlay, topology] of Object.entries(OVERLAYS)) {
  t.test(`overlay ${overlay}`, async (t) => {
    const objects = await renderKustomization(`infra/k8s/overlays/${overlay}`);
    t.ok(objects.length > 10, `kubectl kustomize renders ${objects.length} objects`);

    t.test('every object validates against its Kubernetes schema', async (t) => {
      for (const o of objects) t.doesNotThrow(() => validateAgainstSchema(o), `${o.kind} ${o.metadata.name}`);
    });

    t.test('environment: only schema variables, all of them set, a config each app accepts', async (t) => {
      const covered = new Set<string>(Object.keys(secret));
      const jobs = byKind(objects, 'Job').flatMap((j) => podSpec(j).containers.map((c) => ({ owner: `Job ${j.metadata.name}`, c })));
      const deployments = byKind(objects, 'Deployment').flatMap((d) => podSpec(d).containers.map((c) => ({ owner: `Deployment ${d.metadata.name}`, c })));
      for (const { owner, c } of [...deployments, ...jobs]) {
        const app = appOf(c);
        if (!app) continue;
        const env = containerEnv(c, objects, secret);
        const declared = (c.env ?? []).map((v) => v.name);
        const expansions = (c.env ?? []).map((v) => v.value ?? '').join(' ');
        for (const name of declared) {
          const known = SCHEMA_VARIABLES.includes(name) || expansions.includes(`$(${name})`);
          t.ok(known, `${owner}/${c.name}: ${name} is a config variable (or feeds one)`);
        }
        for (const name of Object.keys(env)) covered.add(name);
        const config = loadConfig(app, env);
        t.equal(config.NODE_ENV, 'production', `${owner}/${c.name}: loadConfig('${app}') accepts it, in production`);
        // A default meant for a laptop (127.0.0.1) must be overridden, except the own-pod gateway.
        for (const name of SCHEMA_VARIABLES) {
          const fallback = (EnvSchema.properties as Record<string, { default?: unknown }>)[name]!.default;
          if (typeof fallback !== 'string' || !fallback.includes('127.0.0.1')) continue;
          if (name === 'SSE_GATEWAY_URL' && !(app === 'api' && owner.startsWith('Deployment'))) continue; // only api pods talk to the gateway
          t.notMatch(String(config[name as keyof typeof config]), /127\.0\.0\.1|localhost/, `${owner}/${c.name}: ${name} is not left on loopback`);
        }
        if (app === 'ingest') t.equal(config.ELASTICSEARCH_URL?.startsWith('http'), true, 'ingest stores lines (ELASTICSEARCH_URL is set)');
        if (app === 'api') t.equal(config.SSE_GATEWAY_TOPOLOGY, topology, `topology ${topology}`);
      }
      const missing = SCHEMA_VARIABLES.filter((v) => !covered.has(v));
      t.same(missing, [], 'every variable of the config schema is set by the ConfigMap, the Secret or a container');
    });

    t.test('probes and Services reach the listeners the config opens', async (t) => {
      for (const app of APPS) {
        const c = appContainer(objects, app);
        const config = loadConfig(app, containerEnv(c, objects, secret));
        const internal = app === 'api' ? config.INTERNAL_PORT : config.PORT;
        t.equal(c.readinessProbe?.httpGet?.path, '/health/readyz', `${app}: readiness on /health/readyz`);
        t.equal(c.livenessProbe?.httpGet?.path, '/health/healthz', `${app}: liveness on /health/healthz`);
        t.equal(containerPort(c, c.readinessProbe?.httpGet?.port), internal, `${app}: readiness probe on the internal listener (${internal})`);
        t.equal(containerPort(c, c.livenessProbe?.httpGet?.port), internal, `${app}: liveness probe on the internal listener`);
        const template = (deploymentOf(objects, app).spec as { template: { metadata: { annotations?: Record<string, string> } } }).template;
        t.equal(Number(template.metadata.annotations?.['prometheus.io/port']), internal, `${app}: Prometheus scrapes the internal listener`);
        if (app === 'api') {
          const publicService = named(objects, 'Service', 'iotsupport-api');
          t.equal(containerPort(c, publicService.spec.ports[0].targetPort), config.PORT, 'Service iotsupport-api targets the public listener');
          const callback = named(objects, 'Service', 'iotsupport-api-callback');
          t.equal(containerPort(c, callback.spec.ports[0].targetPort), config.INTERNAL_PORT, 'Service iotsupport-api-callback targets the internal listener');
        }
      }
    });

    t.test('terminationGracePeriodSeconds covers GRACEFUL_SHUTDOWN_TIMEOUT + SHUTDOWN_DRAIN_SECONDS', async (t) => {
      for (const app of APPS) {
        const spec = podSpec(deploymentOf(objects, app));
        const config = loadConfig(app, containerEnv(appContainer(objects, app), objects, secret));
        const budget = config.GRACEFUL_SHUTDOWN_TIMEOUT + config.SHUTDOWN_DRAIN_SECONDS;
        t.ok((spec.terminationGracePeriodSeconds ?? 30) >= budget, `${app}: ${spec.terminationGracePeriodSeconds} s >= ${budget} s`);
      }
    });

    t.test('the callback Service is not exposed publicly', async (t) => {
      const callback = named(objects, 'Service', 'iotsupport-api-callback');
      t.equal(callback.spec.type ?? 'ClusterIP', 'ClusterIP', 'ClusterIP only (no NodePort, no LoadBalancer)');
      const backends = JSON.stringify(byKind(objects, 'Ingress'));
      t.notMatch(backends, /iotsupport-api-callback/, 'no Ingress routes to it');
      const apiLabels = (deploymentOf(objects, 'api').spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels;
      const internalPort = loadConfig('api', containerEnv(appContainer(objects, 'api'), objects, secret)).INTERNAL_PORT;
      const policies = byKind(objects, 'NetworkPolicy') as Array<K8sObject & { spec: { podSelector: any; policyTypes?: string[]; ingress?: any[] } }>;
      t.ok(
        policies.some((p) => Object.keys(p.spec.podSelector).length === 0 && p.spec.policyTypes?.includes('Ingress') && !p.spec.ingress?.length),
        'ingress is denied by default in the namespace',
      );
      for (const p of policies.filter((p) => selects(p.spec.podSelector, apiLabels))) {
        for (const rule of p.spec.ingress ?? []) {
          const ports: Array<{ port: number | string }> | undefined = rule.ports;
          if (ports && !ports.some((x) => x.port === internalPort || x.port === 'internal')) continue;
          const peers: any[] = rule.from ?? [];
          t.ok(peers.length > 0, `${p.metadata.name}: the internal port is admitted only from named peers`);
          for (const peer of peers) {
            t.notOk(peer.ipBlock, `${p.metadata.name}: no address range reaches the internal port`);
            const labelled = (s: any) => s && (Object.keys(s.matchLabels ?? {}).length > 0 || (s.matchExpressions ?? []).length > 0);
            t.ok(labelled(peer.podSelector) || labelled(peer.namespaceSelector), `${p.metadata.name}: each peer is selected by labels`);
          }
        }
      }
    });

    t.test('ingest keeps one persistent MQTT session through rollouts', async (t) => {
      const ingest = deploymentOf(objects, 'ingest');
      t.equal(ingest.spec.replicas, 1, 'one replica');
      t.equal(ingest.spec.strategy?.type, 'Recreate', 'Recreate: never two sessions with one client id');
      const clientId = (appContainer(objects, 'ingest').env ?? []).find((v) => v.name === 'MQTT_CLIENT_ID');
      t.match(clientId?.value, /^[^$]+$/, 'MQTT_CLIENT_ID is a fixed value, not per pod');
      t.notOk(
        byKind(objects, 'HorizontalPodAutoscaler').some((h: any) => h.spec.scaleTargetRef.name === ingest.metadata.name),
        'no autoscaler on ingest',
      );
    });

    t.test('the api is autoscaled and protected by a disruption budget', async (t) => {
      t.ok(byKind(objects, 'HorizontalPodAutoscaler').some((h: any) => h.spec.scaleTargetRef.name === 'iotsupport-api'), 'HPA');
      t.ok(byKind(objects, 'PodDisruptionBudget').some((p: any) => p.spec.selector.matchLabels['app.kubernetes.io/name'] === 'api'), 'PDB');
    });

    t.test('the migration Job runs the db CLI of the api image with the same config', async (t) => {
      const job = named(objects, 'Job', 'iotsupport-migrate');
      const c = podSpec(job).containers[0]!;
      t.equal(appOf(c), 'api', 'api image');
      t.same(c.args, ['node_modules/@iotsupport/db/dist/src/cli.js', 'migrate'], 'the command the bundle test runs');
    });

    t.test('the gateway calls back on the callback listener and the api sends to it', async (t) => {
      const api = appContainer(objects, 'api');
      const config = loadConfig('api', containerEnv(api, objects, secret));
      const gatewayUrl = new URL(config.SSE_GATEWAY_URL);
      const gatewayPods = [...byKind(objects, 'Deployment')].flatMap((d) => podSpec(d).containers.filter((c) => c.name === 'sse-gateway').map((c) => ({ d, c })));
      t.equal(gatewayPods.length, 1, 'one gateway container spec');
      const { d, c: gateway } = gatewayPods[0]!;
      const gatewayEnv = containerEnv(gateway, objects, secret);
      const callbackUrl = new URL(gatewayEnv.CALLBACK_URL!);
      t.equal(callbackUrl.pathname, '/api/sse/callback', 'CALLBACK_URL is the callback route');
      t.equal(callbackUrl.searchParams.get('secret'), config.SSE_CALLBACK_SECRET, 'with the api’s SSE_CALLBACK_SECRET');
      t.equal(Number(callbackUrl.port), config.INTERNAL_PORT, 'on the internal listener');
      const gatewayPort = gateway.ports?.[0]?.containerPort;
      t.equal(Number(gatewayUrl.port), gatewayPort, 'SSE_GATEWAY_URL is the gateway’s port');
      if (topology === 'shared') {
        t.equal(d.metadata.name, 'iotsupport-sse-gateway', 'a Deployment of its own');
        t.equal((d.spec as { replicas: number }).replicas, 1, 'one replica: /internal/send must reach the process holding the stream');
        t.equal(callbackUrl.hostname, 'iotsupport-api-callback', 'callbacks go through the callback Service');
        const service = named(objects, 'Service', gatewayUrl.hostname);
        t.ok(selects({ matchLabels: service.spec.selector }, (d.spec as any).template.metadata.labels), 'SSE_GATEWAY_URL names the gateway’s Service');
      } else {
        t.equal(d.metadata.name, 'iotsupport-api', 'a container of each api pod');
        t.equal(callbackUrl.hostname, '127.0.0.1', 'callbacks over the pod’s loopback');
        t.equal(gatewayUrl.hostname, '10.20.30.40', 'SSE_GATEWAY_URL is the pod IP, so other pods can close its streams after a take-over');
      }
    });
  });
}

t.test('monitoring and Mosquitto kustomizations render and validate', async (t) => {
  for (const dir of ['infra/k8s/monitoring', 'infra/k8s/mosquitto']) {
    const objects = await renderKustomization(dir);
    t.ok(objects.length > 0, `${dir} renders`);
    for (const o of objects) t.doesNotThrow(() => validateAgainstSchema(o), `${dir}: ${o.kind} ${o.metadata.name}`);
  }
});

t.test("the cluster's Mosquitto keeps the no-loss settings the tests run with", async (t) => {
  const settings = (file: string) =>
    Object.fromEntries(
      readFileSync(repoPath(file), 'utf8')
        .split('\n')
        .map((l) => l.trim().split(/\s+/))
        .filter(([k]) => ['persistence', 'max_queued_messages', 'max_queued_bytes', 'max_inflight_messages', 'message_size_limit'].includes(k!)),
    );
  const dev = settings('infra/mosquitto/mosquitto.conf');
  t.equal(Object.keys(dev).length, 5, 'the dev broker sets all five');
  t.same(settings('infra/k8s/mosquitto/mosquitto.conf'), dev);
});
