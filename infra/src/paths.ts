import { fileURLToPath } from 'node:url';

/** The repository root (this file runs from infra/dist/src). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** A path inside the repository. */
export function repoPath(relative: string): string {
  return `${REPO_ROOT}${relative}`;
}
