import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { repoPath } from './paths.js';

/** A rendered Kubernetes object, as far as the checks read it. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

const run = promisify(execFile);

/**
 * `kubectl kustomize <dir>` (KUBECTL overrides the binary; infra/k8s/ensure-kubectl.sh installs
 * Debian's when none is present), parsed into objects.
 */
export async function renderKustomization(dir: string): Promise<K8sObject[]> {
  const { stdout } = await run(process.env.KUBECTL ?? 'kubectl', ['kustomize', repoPath(dir)], { maxBuffer: 32 * 1024 * 1024 });
  return parseAllDocuments(stdout)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`${dir}: ${doc.errors[0]!.message}`);
      return doc.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null);
}
