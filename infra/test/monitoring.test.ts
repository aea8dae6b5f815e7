import t from 'tap';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { metricNamesInExposition, metricNamesInPromQL } from '../src/metric-names.js';
import { PROMETHEUS_RULE_FILE, alertRules, dashboardQueries, runbookAnchors, toPrometheusRule } from '../src/monitoring.js';
import { repoPath } from '../src/paths.js';

/**
 * The alert rules and the dashboard as files: well-formed PromQL, a runbook section per alert, the
 * PrometheusRule in step with the plain rules file. That every metric they name exists is checked
 * against the running bundles' /metrics (bundles.test.ts).
 */
t.test('metric names are read from PromQL with its grammar, not guessed', async (t) => {
  t.same(
    metricNamesInPromQL('sum by (le, app) (rate(a_seconds_bucket{status!="ok"}[5m])) / on(app) b_total > 0 and changes(c[$__rate_interval]) > 1'),
    ['a_seconds_bucket', 'b_total', 'c'],
    'selectors only: no functions, labels, keywords or durations',
  );
  t.throws(() => metricNamesInPromQL('rate(a_total[5m]'), 'a syntax error is reported');
  const exposed = metricNamesInExposition('# HELP h x\n# TYPE h histogram\nh_bucket{le="1"} 0\n# TYPE c_total counter\n');
  t.same([...exposed].sort(), ['c_total', 'h', 'h_bucket', 'h_count', 'h_sum']);
  t.notOk(exposed.has('c_totl'), 'a misspelt name is not found');
});

t.test('every alert: valid PromQL, severity, summary and a runbook section in docs/operations.md', async (t) => {
  const anchors = runbookAnchors();
  const rules = alertRules();
  t.ok(rules.length >= 10);
  t.equal(new Set(rules.map((r) => r.alert)).size, rules.length, 'alert names are unique');
  for (const rule of rules) {
    t.doesNotThrow(() => metricNamesInPromQL(rule.expr), `${rule.alert}: PromQL parses`);
    t.match(rule.labels?.severity, /^(info|warning|critical)$/, `${rule.alert}: severity`);
    t.ok(rule.annotations?.summary, `${rule.alert}: summary`);
    const anchor = rule.alert.toLowerCase();
    t.ok(anchors.has(anchor), `${rule.alert}: docs/operations.md has a "### ${rule.alert}" section`);
    t.equal(rule.annotations?.runbook_url, `docs/operations.md#${anchor}`, `${rule.alert}: runbook_url points at it`);
  }
});

t.test('every dashboard query is valid PromQL', async (t) => {
  const queries = dashboardQueries();
  t.ok(queries.length >= 20);
  for (const q of queries) t.doesNotThrow(() => metricNamesInPromQL(q.expr), `panel "${q.panel}"`);
});

t.test('the PrometheusRule holds exactly the rules of the plain rules file', async (t) => {
  const committed = parse(readFileSync(repoPath(PROMETHEUS_RULE_FILE), 'utf8')) as unknown;
  t.same(committed, toPrometheusRule(), 'regenerate with `pnpm --filter @iotsupport/infra run prometheus-rule`');
});
