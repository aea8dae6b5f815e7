import type { Redis } from 'ioredis';
import { Gauge, type Registry } from 'prom-client';

/** Bounds of one scan: stream keys read, SCAN calls (each examines ~SCAN_COUNT keys of the keyspace); how long its result is reused. */
const MAX_KEYS = 10_000;
const MAX_CALLS = 200;
const SCAN_COUNT = 1000;
const CACHE_MS = 10_000;

interface WindowStats {
  devices: number;
  sum: number;
  max: number;
  truncated: boolean;
}

/**
 * The devices' retained windows, fleet-wide, read at scrape time (every pod reports the same
 * figures: aggregate with max, not sum): how many devices have a window, their lines (sum, max,
 * mean), whether the scan stopped at its bound. One bounded SCAN (`<prefix>:log:{*}:stream`,
 * at most 10,000 stream keys or 200 calls) plus pipelined XLENs, reused for 10 s so scrapes cannot load Redis.
 */
export function streamWindowMetrics(registry: Registry, redis: Redis, prefix: string): void {
  let cached: { at: number; stats: Promise<WindowStats> } | undefined;
  const stats = (): Promise<WindowStats> => {
    const now = Date.now();
    if (!cached || now - cached.at > CACHE_MS) cached = { at: now, stats: scanWindows(redis, prefix).catch(() => ({ devices: 0, sum: 0, max: 0, truncated: true })) };
    return cached.stats;
  };
  new Gauge({
    name: 'sse_stream_window_lines',
    help: 'Lines held in the devices\' retained windows, fleet-wide: stat = sum | max | mean (per device)',
    labelNames: ['stat'],
    registers: [registry],
    async collect() {
      const s = await stats();
      this.set({ stat: 'sum' }, s.sum);
      this.set({ stat: 'max' }, s.max);
      this.set({ stat: 'mean' }, s.devices === 0 ? 0 : s.sum / s.devices);
    },
  });
  new Gauge({
    name: 'sse_stream_window_devices',
    help: 'Devices with a retained window, fleet-wide (of the keys the bounded scan saw)',
    registers: [registry],
    async collect() {
      this.set((await stats()).devices);
    },
  });
  new Gauge({
    name: 'sse_stream_window_scan_truncated',
    help: '1 when the scrape-time scan of the windows stopped at its bound (the figures cover part of the devices)',
    registers: [registry],
    async collect() {
      this.set((await stats()).truncated ? 1 : 0);
    },
  });
}

async function scanWindows(redis: Redis, prefix: string): Promise<WindowStats> {
  const stats: WindowStats = { devices: 0, sum: 0, max: 0, truncated: false };
  let cursor = '0';
  let seen = 0;
  let calls = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:log:{*}:stream`, 'COUNT', SCAN_COUNT);
    cursor = next;
    if (keys.length > 0) {
      const pipeline = redis.pipeline();
      for (const key of keys) pipeline.xlen(key);
      for (const [err, length] of (await pipeline.exec()) ?? []) {
        if (err) continue;
        stats.devices += 1;
        stats.sum += Number(length);
        stats.max = Math.max(stats.max, Number(length));
      }
    }
    seen += keys.length;
    calls += 1;
    if ((seen >= MAX_KEYS || calls >= MAX_CALLS) && cursor !== '0') stats.truncated = true;
  } while (cursor !== '0' && !stats.truncated);
  return stats;
}
