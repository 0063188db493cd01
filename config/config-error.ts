/** A configuration problem, worded for the admin: the key, the value, what is allowed, and where it was set. */
export class ConfigError extends Error {
  readonly code = 'FERRY_ERR_CONFIG';
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}
