import { writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { PROMETHEUS_RULE_FILE, RULES_FILE, toPrometheusRule } from './monitoring.js';
import { repoPath } from './paths.js';

/** `pnpm --filter @iotsupport/infra run prometheus-rule`: regenerates the PrometheusRule from the plain rules file. */
const header = `# Generated from ${RULES_FILE} by \`pnpm --filter @iotsupport/infra run prometheus-rule\`: edit that file, not this one.\n`;
writeFileSync(repoPath(PROMETHEUS_RULE_FILE), header + stringify(toPrometheusRule(), { lineWidth: 0 }));
process.stdout.write(`wrote ${PROMETHEUS_RULE_FILE}\n`);
