import { readFileSync } from 'node:fs';
import type { K8sObject } from './kustomize.js';
import { repoPath } from './paths.js';

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string }; secretKeyRef?: { name: string; key: string }; configMapKeyRef?: { name: string; key: string } };
}

export interface Container {
  name: string;
  image: string;
  args?: string[];
  ports?: Array<{ name?: string; containerPort: number }>;
  env?: EnvVar[];
  envFrom?: Array<{ configMapRef?: { name: string }; secretRef?: { name: string } }>;
  readinessProbe?: { httpGet?: { path: string; port: number | string } };
  livenessProbe?: { httpGet?: { path: string; port: number | string } };
}

export interface PodSpec {
  containers: Container[];
  terminationGracePeriodSeconds?: number;
}

export const SECRETS_EXAMPLE = 'infra/k8s/base/secrets.env.example';

/** The Secret's keys and example values, from the file the operator creates it from. */
export function secretExample(): Record<string, string> {
  const values: Record<string, string> = {};
  for (const line of readFileSync(repoPath(SECRETS_EXAMPLE), 'utf8').split('\n')) {
    const match = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (match) values[match[1]!] = match[2]!;
  }
  return values;
}

/** Stand-ins for what the kubelet fills in: a pod name and a pod IP. */
const FIELD_VALUES: Record<string, string> = { 'metadata.name': 'iotsupport-pod-7f9c4', 'status.podIP': '10.20.30.40' };

/**
 * The environment a container starts with, as the kubelet builds it: envFrom sources first, then
 * `env` in order, `$(VAR)` expanded from what is defined before. `secret` holds the Secret's values.
 */
export function containerEnv(container: Container, objects: K8sObject[], secret: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  const configMap = (name: string) => {
    const found = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === name) as { data?: Record<string, string> } | undefined;
    if (!found) throw new Error(`${container.name}: ConfigMap ${name} is not in the manifests`);
    return found.data ?? {};
  };
  for (const source of container.envFrom ?? []) {
    if (source.configMapRef) Object.assign(env, configMap(source.configMapRef.name));
    if (source.secretRef) Object.assign(env, secret);
  }
  for (const v of container.env ?? []) {
    if (v.value !== undefined) env[v.name] = v.value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, ref: string) => env[ref] ?? whole);
    else if (v.valueFrom?.fieldRef) env[v.name] = FIELD_VALUES[v.valueFrom.fieldRef.fieldPath] ?? `unknown field ${v.valueFrom.fieldRef.fieldPath}`;
    else if (v.valueFrom?.secretKeyRef) env[v.name] = secret[v.valueFrom.secretKeyRef.key] ?? '';
    else if (v.valueFrom?.configMapKeyRef) env[v.name] = configMap(v.valueFrom.configMapKeyRef.name)[v.valueFrom.configMapKeyRef.key] ?? '';
  }
  return env;
}

/** A container's port by number or name. */
export function containerPort(container: Container, port: number | string | undefined): number | undefined {
  if (typeof port === 'number') return port;
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

export function podSpec(object: K8sObject): PodSpec {
  return (object as unknown as { spec: { template: { spec: PodSpec } } }).spec.template.spec;
}
