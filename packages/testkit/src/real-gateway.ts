import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The real SSE Gateway (pvginkel/SSEGateway, built outside the repository; `main` is its
 * `dist/index.js`) as a process, for benchmarks against the real thing. Never used by tests: CI
 * has no copy of it.
 *
 * Its log (one line per send) goes to a file, not a pipe: Node writes to a pipe synchronously, so
 * a busy reader would stall the gateway and the benchmark would measure the reader.
 */
export interface RealGateway {
  url: string;
  child: ChildProcess;
  /** The gateway's log so far. */
  log(): string;
  /** SIGKILL (as a crash) and wait for the exit; the log file is kept until `stop`. */
  kill(): Promise<void>;
  /** Kills it if still running and removes its log. */
  stop(): Promise<void>;
}

export async function startRealGateway(options: { main: string; port: number; callbackUrl: string; heartbeatSeconds?: number }): Promise<RealGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'real-gateway-'));
  const logFile = join(dir, 'gateway.log');
  const fd = openSync(logFile, 'a');
  const child = spawn(process.execPath, [options.main], {
    env: { PATH: process.env.PATH ?? '', PORT: String(options.port), CALLBACK_URL: options.callbackUrl, HEARTBEAT_INTERVAL_SECONDS: String(options.heartbeatSeconds ?? 15) },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${options.port}`;
  const log = () => readFileSync(logFile, 'utf8');
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
    await exited;
  };
  const gateway: RealGateway = {
    url,
    child,
    log,
    kill,
    async stop() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const out = log();
      await gateway.stop();
      throw new Error(`the SSE Gateway (${options.main}) exited:\n${out}`);
    }
    const ready = await fetch(`${url}/readyz`).then((r) => r.ok, () => false);
    if (ready) return gateway;
    if (Date.now() > deadline) {
      await gateway.stop();
      throw new Error(`the SSE Gateway (${options.main}) was not ready within 20 s`);
    }
    await sleep(50);
  }
}
