/** Reading metrics in tests: from a prom-client registry (in-process) or a /metrics text (a process). */

/** What `metricValue` needs of a prom-client `Registry` (structural: testkit does not depend on prom-client). */
export interface MetricRegistry {
  getSingleMetric(name: string):
    | { get(): Promise<{ values: Array<{ value: number; labels: Partial<Record<string, string | number>>; metricName?: string }> }> }
    | undefined;
}

/**
 * Sum of a metric's series whose labels match (0 when it does not exist yet). For a histogram or
 * summary: the number of observations (`<name>_count`).
 */
export async function metricValue(registry: MetricRegistry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return 0;
  const { values } = await metric.get();
  return values
    .filter((v) => v.metricName === undefined || v.metricName === name || v.metricName === `${name}_count`)
    .filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))
    .reduce((sum, v) => sum + v.value, 0);
}

/** Sum of the samples of a Prometheus text exposition (a `/metrics` body) whose name is `name` and labels match. */
export function metricSample(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== '{' && line[name.length] !== ' ')) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** Each matching sample of a /metrics text on its own (e.g. a gauge per connection), labels parsed. */
export function metricSamples(text: string, name: string): Array<{ labels: Record<string, string>; value: number }> {
  const out: Array<{ labels: Record<string, string>; value: number }> = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== '{' && line[name.length] !== ' ')) continue;
    const labels = Object.fromEntries([...(/\{(.*)\}/.exec(line)?.[1] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!]));
    out.push({ labels, value: Number(line.slice(line.lastIndexOf(' ') + 1)) });
  }
  return out;
}
