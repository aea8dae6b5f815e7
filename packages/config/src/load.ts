import { hostname } from 'node:os';
import { CronExpressionParser } from 'cron-parser';
import { Value } from 'typebox/value';
import { EnvSchema, type Env } from './schema.js';

export type AppName = 'api' | 'ingest' | 'worker';

/** Per-app defaults that differ between deployables (contract: listeners table). */
const APP_DEFAULTS: Record<AppName, { PORT: number; MQTT_CLIENT_ID: (podId: string) => string }> = {
  api: { PORT: 3101, MQTT_CLIENT_ID: (pod) => `iotsupport-api-${pod}` },
  // ingest keeps a persistent MQTT session: its client id must be stable across restarts.
  ingest: { PORT: 3121, MQTT_CLIENT_ID: () => 'iotsupport-ingest' },
  worker: { PORT: 3131, MQTT_CLIENT_ID: (pod) => `iotsupport-worker-${pod}` },
};

export interface Config extends Env {
  APP: AppName;
  PORT: number;
  POD_ID: string;
  MQTT_CLIENT_ID: string;
}

export interface ConfigProblem {
  variable: string;
  problem: string;
}

/** A bad or missing variable; the message names every offending variable. */
export class ConfigError extends Error {
  constructor(public readonly problems: ConfigProblem[]) {
    super(`invalid configuration: ${problems.map((p) => `${p.variable} ${p.problem}`).join('; ')}`);
    this.name = 'ConfigError';
  }
}

/** Keeps only the variables of the schema; empty strings count as unset (as in most manifests). */
function pickDeclared(env: NodeJS.ProcessEnv): Record<string, string> {
  const picked: Record<string, string> = {};
  for (const key of Object.keys(EnvSchema.properties)) {
    const value = env[key];
    if (value !== undefined && value !== '') picked[key] = value;
  }
  return picked;
}

function schemaProblems(value: unknown): ConfigProblem[] {
  const byVariable = new Map<string, ConfigProblem>();
  for (const e of Value.Errors(EnvSchema, value)) {
    const fromPath = e.instancePath.replace(/^\//, '');
    const missing = (e.params as { requiredProperties?: string[] }).requiredProperties;
    const variable = fromPath || missing?.join(', ') || '(environment)';
    const raw = fromPath ? (value as Record<string, unknown>)[fromPath] : undefined;
    // A union (NODE_ENV, LOG_LEVEL) reports once per branch: one line per variable is enough.
    if (!byVariable.has(variable)) {
      byVariable.set(variable, { variable, problem: `${e.message}${raw === undefined ? '' : ` (got ${JSON.stringify(raw)})`}` });
    }
  }
  return [...byVariable.values()];
}

/**
 * Parsed with cron-parser, the parser BullMQ's job schedulers use, so a value accepted here is one
 * the worker can schedule (a bad one used to start anyway and never queue the fleet).
 */
function cronExpressionProblem(expression: string): string | undefined {
  try {
    CronExpressionParser.parse(expression, { tz: 'UTC' });
    return undefined;
  } catch (err) {
    return `is not a valid cron expression: ${(err as Error).message}`;
  }
}

/** Rules that span several variables, which a per-field schema cannot express. */
function crossFieldProblems(app: AppName, env: Env): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (env.NODE_ENV === 'production') {
    if (!env.SSE_CALLBACK_SECRET) problems.push({ variable: 'SSE_CALLBACK_SECRET', problem: 'is required when NODE_ENV=production' });
    if (!env.SECRET_KEY) problems.push({ variable: 'SECRET_KEY', problem: 'is required when NODE_ENV=production' });
    // Only the api serves public routes: OIDC off there means anyone reaching the port may manage devices.
    if (app === 'api' && !env.OIDC_ENABLED && !env.ALLOW_UNAUTHENTICATED_API) {
      problems.push({ variable: 'OIDC_ENABLED', problem: 'must be true when NODE_ENV=production (or set ALLOW_UNAUTHENTICATED_API=true to serve the api without authentication)' });
    }
  }
  if (env.OIDC_ENABLED) {
    if (!env.OIDC_ISSUER_URL) problems.push({ variable: 'OIDC_ISSUER_URL', problem: 'is required when OIDC_ENABLED=true' });
    if (!env.OIDC_AUDIENCE) problems.push({ variable: 'OIDC_AUDIENCE', problem: 'is required when OIDC_ENABLED=true' });
    if (env.NODE_ENV === 'production') {
      for (const variable of ['IDP_ADMIN_CLIENT_ID', 'IDP_ADMIN_CLIENT_SECRET'] as const) {
        if (!env[variable]) problems.push({ variable, problem: 'is required when OIDC_ENABLED=true and NODE_ENV=production (device clients at the identity provider)' });
      }
    }
  }
  if (env.OIDC_ENABLED && env.IDP_ADMIN_CLIENT_ID && env.OIDC_ISSUER_URL && !/\/realms\/[^/?#]+\/?$/.test(env.OIDC_ISSUER_URL)) {
    problems.push({ variable: 'OIDC_ISSUER_URL', problem: 'must end with /realms/<realm> when IDP_ADMIN_CLIENT_ID is set (the Keycloak admin API is derived from it)' });
  }
  if ((env.IDP_ADMIN_CLIENT_ID === undefined) !== (env.IDP_ADMIN_CLIENT_SECRET === undefined)) {
    problems.push({ variable: 'IDP_ADMIN_CLIENT_ID', problem: 'and IDP_ADMIN_CLIENT_SECRET must be set together' });
  }
  const cronProblem = cronExpressionProblem(env.ROTATION_CRON);
  if (cronProblem) problems.push({ variable: 'ROTATION_CRON', problem: `${cronProblem} (got ${JSON.stringify(env.ROTATION_CRON)})` });
  if ((env.ELASTICSEARCH_USERNAME === undefined) !== (env.ELASTICSEARCH_PASSWORD === undefined)) {
    problems.push({ variable: 'ELASTICSEARCH_USERNAME', problem: 'and ELASTICSEARCH_PASSWORD must be set together' });
  }
  return problems;
}

/**
 * Reads, converts, defaults and validates the environment for one app.
 * Throws ConfigError naming every bad variable; never returns a half-valid config.
 */
export function loadConfig(app: AppName, env: NodeJS.ProcessEnv = process.env): Config {
  const declared = pickDeclared(env);
  const converted = Value.Convert(EnvSchema, declared);
  const withDefaults = Value.Default(EnvSchema, converted);
  const problems = schemaProblems(withDefaults);
  if (problems.length > 0) throw new ConfigError(problems);
  const parsed = withDefaults as Env;
  const cross = crossFieldProblems(app, parsed);
  if (cross.length > 0) throw new ConfigError(cross);
  const defaults = APP_DEFAULTS[app];
  const podId = parsed.POD_ID ?? `${hostname()}-${process.pid}`;
  return Object.freeze({
    ...parsed,
    APP: app,
    PORT: parsed.PORT ?? defaults.PORT,
    POD_ID: podId,
    MQTT_CLIENT_ID: parsed.MQTT_CLIENT_ID ?? defaults.MQTT_CLIENT_ID(podId),
  });
}

/** For `main.ts`: a bad environment stops the process with a message naming the variable. */
export function loadConfigOrExit(app: AppName, env: NodeJS.ProcessEnv = process.env): Config {
  try {
    return loadConfig(app, env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${app}: ${err.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
}

/** `${MQTT_TOPIC_PREFIX}${topic}`: every MQTT topic goes through here. */
export function mqttTopic(config: Pick<Env, 'MQTT_TOPIC_PREFIX'>, topic: string): string {
  return `${config.MQTT_TOPIC_PREFIX}${topic}`;
}
