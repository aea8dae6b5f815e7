import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { freePort } from '@iotsupport/testkit';

const PRODUCTION_CONF = fileURLToPath(new URL('../../../infra/mosquitto/mosquitto.conf', import.meta.url));

export interface PrivateBroker {
  url: string;
  stop(): Promise<void>;
}

/**
 * A Mosquitto of its own on a free loopback port, with the settings of
 * infra/mosquitto/mosquitto.conf (no queue limit), so a benchmark's backlog is never cut at the
 * default 1000 queued messages and never disturbs the shared broker. Persistence is off: the
 * benchmark measures throughput, not restarts.
 */
export async function startPrivateBroker(): Promise<PrivateBroker> {
  // The port was free a moment ago; if something took it before mosquitto bound it, mosquitto
  // exits at once: start it again on another one.
  for (let start = 1; ; start++) {
    const broker = await tryStart(await freePort());
    if (broker) return broker;
    if (start >= 5) throw new Error('private mosquitto did not start (its port was taken each time)');
  }
}

async function tryStart(port: number): Promise<PrivateBroker | undefined> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-mosquitto-'));
  const conf = (await readFile(PRODUCTION_CONF, 'utf8'))
    .split('\n')
    .filter((line) => !/^(persistence|persistence_location|listener|log_dest)\b/.test(line))
    .concat(['persistence false', `listener ${port} 127.0.0.1`, 'log_dest none', ''])
    .join('\n');
  const confPath = join(dir, 'mosquitto.conf');
  await writeFile(confPath, conf);
  const child: ChildProcess = spawn('mosquitto', ['-c', confPath], { stdio: 'ignore' });
  let alive = true;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      alive = false;
      resolve();
    }),
  );
  const url = `mqtt://127.0.0.1:${port}`;
  for (let attempt = 0; ; attempt++) {
    if (!alive) {
      await rm(dir, { recursive: true, force: true });
      return undefined;
    }
    try {
      const probe = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 500 });
      await probe.endAsync();
      if (alive) break; // (an answer while ours is gone came from whoever took the port)
    } catch (err) {
      if (attempt > 50) throw new Error(`private mosquitto did not start: ${String(err)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    url,
    async stop() {
      child.kill('SIGTERM');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
