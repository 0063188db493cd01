// Secrets never leave the process in clear: not in `ferry check-config`, not in a configuration
// error, not in a log line. Two kinds exist: settings that are secret by name
// (storage.s3.secretAccessKey, ...) and passwords inside URLs (postgres://user:PASSWORD@host,
// smtps://user:PASSWORD@host).

// token: admin.token and admin.tokens (bearer tokens of the admin API).
const SECRET_KEY_RE = /(secret|password|token|apiKey)/i;
const MASK = '***';
// Settings ABOUT transfer passwords (docs/passwords.md) hold no secret: masked, they would print
// as "***" and the printout would no longer load (a number or a switch expected).
const NOT_SECRET = new Set(['passwordMaxFailures', 'passwordLockout', 'passwordTag', 'requirePassword']);

/** True for a setting whose value is a secret, by its last key (e.g. "secretAccessKey"). */
export function isSecretKey(key: string): boolean {
  return SECRET_KEY_RE.test(key) && !NOT_SECRET.has(key);
}

/** A URL with the password of its user info masked: postgres://ferry:***@db/ferry. */
export function redactUrlPassword(value: string): string {
  // The user info ends at the LAST "@" before the path, as URL parsers read it: a raw "@" in a
  // user name (smtp://alice@example.com:PASSWORD@host) or a password (smtp://u:p@ss@host) is
  // accepted by them, so matching up to the first "@" would print (part of) the password.
  return value
    .replace(/^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)@/i, (whole, scheme: string, userInfo: string) => {
      const colon = userInfo.indexOf(':');
      return colon < 0 ? whole : `${scheme}${userInfo.slice(0, colon)}:${MASK}@`;
    })
    // PostgreSQL URLs also take it as a parameter: postgres://ferry@db/ferry?password=...
    .replace(/([?&](?:ssl)?password=)[^&#]*/gi, (_m, key: string) => (/^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? `${key}${MASK}` : _m));
}

/** One value as it may be shown: a secret key's value masked, a URL's password masked. */
export function redactValue(key: string, value: unknown): unknown {
  if (value === undefined || value === null) return value;
  if (isSecretKey(key)) return MASK;
  // smtp.tls.key and web.tls.key take PEM text as well as a file path: the text is the secret.
  if (typeof value === 'string' && /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(value)) return MASK;
  return typeof value === 'string' ? redactUrlPassword(value) : value;
}

/** A deep copy of a configuration (or any part of it) fit to print or log. */
export function redactConfig<T>(config: T): T {
  const walk = (key: string, v: unknown): unknown => {
    if (Array.isArray(v)) return v.map((x) => walk(key, x));
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(k, x)]));
    return redactValue(key, v);
  };
  return walk('', config) as T;
}
