import { parser } from '@prometheus-io/lezer-promql';

/**
 * The metric names a PromQL expression selects, read with Prometheus's own grammar (lezer-promql),
 * so function names, label names and keywords are never mistaken for metrics. Throws on a syntax
 * error. Grafana's `$__rate_interval`-style variables are replaced by a duration first.
 */
export function metricNamesInPromQL(expr: string): string[] {
  const query = expr.replace(/\$__\w+/g, '5m');
  const tree = parser.parse(query);
  const names = new Set<string>();
  let syntaxError: number | undefined;
  tree.iterate({
    enter(node) {
      if (node.type.isError && syntaxError === undefined) syntaxError = node.from;
      if (node.name === 'Identifier' && node.node.parent?.name === 'VectorSelector') names.add(query.slice(node.from, node.to));
    },
  });
  if (syntaxError !== undefined) throw new Error(`PromQL syntax error at ${syntaxError}: ${query}`);
  return [...names];
}

/**
 * Every series name a `/metrics` text (Prometheus exposition) can produce: each `# TYPE` family,
 * with `_bucket`/`_sum`/`_count` for histograms and summaries. Families are listed even before their
 * first sample, so a process just started names every metric it registered.
 */
export function metricNamesInExposition(text: string): Set<string> {
  const names = new Set<string>();
  for (const match of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = match as unknown as [string, string, string];
    names.add(name);
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${name}${suffix}`);
    if (type === 'summary') for (const suffix of ['_sum', '_count']) names.add(`${name}${suffix}`);
  }
  return names;
}
