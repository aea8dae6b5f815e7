import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { repoPath } from './paths.js';

export const RULES_FILE = 'infra/k8s/monitoring/alerts.rules.yml';
export const PROMETHEUS_RULE_FILE = 'infra/k8s/monitoring/prometheus-rule.yaml';
export const DASHBOARD_FILE = 'infra/k8s/monitoring/dashboard.json';
export const RUNBOOK_FILE = 'docs/operations.md';

export interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface RuleGroups {
  groups: Array<{ name: string; rules: AlertRule[] }>;
}

export function readRuleGroups(): RuleGroups {
  return parse(readFileSync(repoPath(RULES_FILE), 'utf8')) as RuleGroups;
}

export function alertRules(groups: RuleGroups = readRuleGroups()): AlertRule[] {
  return groups.groups.flatMap((g) => g.rules);
}

/** The plain rules file as a prometheus-operator PrometheusRule (what prometheus-rule.yaml must hold). */
export function toPrometheusRule(groups: RuleGroups = readRuleGroups()) {
  return {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: { name: 'iotsupport-realtime', labels: { 'app.kubernetes.io/part-of': 'iotsupport-realtime' } },
    spec: groups,
  };
}

interface Panel {
  title?: string;
  targets?: Array<{ expr?: string }>;
  panels?: Panel[];
}

/** Every PromQL query of the dashboard, with the panel it belongs to. */
export function dashboardQueries(): Array<{ panel: string; expr: string }> {
  const dashboard = JSON.parse(readFileSync(repoPath(DASHBOARD_FILE), 'utf8')) as { panels: Panel[] };
  const walk = (panels: Panel[]): Array<{ panel: string; expr: string }> =>
    panels.flatMap((p) => [
      ...(p.targets ?? []).flatMap((t) => (t.expr ? [{ panel: p.title ?? '(untitled)', expr: t.expr }] : [])),
      ...walk(p.panels ?? []),
    ]);
  return walk(dashboard.panels);
}

/** `### Heading` anchors of the runbook, as GitHub renders them (lower case, spaces to dashes). */
export function runbookAnchors(): Set<string> {
  const text = readFileSync(repoPath(RUNBOOK_FILE), 'utf8');
  return new Set([...text.matchAll(/^#{2,4} (.+)$/gm)].map((m) => m[1]!.trim().toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-')));
}
