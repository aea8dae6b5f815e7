export { EnvSchema, type Env } from './schema.js';
export { loadConfig, loadConfigOrExit, mqttTopic, ConfigError, type Config, type ConfigProblem, type AppName } from './load.js';
