export { ConfigError, loadConfig, envName, settingPaths, type LoadOptions } from './load.js';
export { configSchema, resolveConfig, type Config, type ConfigInput } from './schema.js';
export { formatSize, parseDuration, parseSize } from './units.js';
export { addressInList, buildBlockList, parseCidr } from './ip-ranges.js';
export { isSecretKey, redactConfig, redactUrlPassword, redactValue } from './redact.js';
