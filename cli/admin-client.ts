import { printable, UsageError } from './admin-output.js';

// `ferry transfers|queue|rules --server URL`: the same commands against a running Ferry's admin
// API (docs/admin.md, "The CLI against a server") instead of the database. The server checks
// the token and its role: a read-only token (admin.readonlyTokens) can list and show, and every
// change it tries is refused and audited there, not trusted to the client. Nothing here needs
// the configuration file, so helpdesk staff need neither it nor a shell on the Ferry host.

/** The environment variables the client reads; not settings (config/load.ts lets them through). */
export const SERVER_ENV = 'FERRY_CLI_SERVER';
export const TOKEN_ENV = 'FERRY_CLI_TOKEN';

/** An answer of the admin API that is not a success: its status, code and message. */
export class AdminApiError extends Error {
  override name = 'AdminApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    // NB the server's words go to a terminal: no control characters from the network.
    super(printable(message));
  }
  /** 401 and 403 (bad token, read-only role): exit 77 (EX_NOPERM), as sysexits.h has it. */
  get exitCode(): number {
    return this.status === 401 || this.status === 403 ? 77 : 1;
  }
}

const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])$/i;

export class AdminApiClient {
  private readonly base: string;
  constructor(
    server: URL,
    private readonly token: string,
    private readonly timeoutMs = 30_000,
  ) {
    this.base = `${server.origin}${server.pathname.replace(/\/+$/, '')}/admin/api`;
  }

  /** The client for `--server URL` (or FERRY_CLI_SERVER) with the token of FERRY_CLI_TOKEN; undefined without a server. */
  static fromArgs(server: string | undefined, env: NodeJS.ProcessEnv = process.env): AdminApiClient | undefined {
    const raw = server ?? env[SERVER_ENV];
    if (raw === undefined) return undefined;
    if (!raw.trim()) throw new UsageError('--server needs a URL, e.g. https://ferry.example.org');
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new UsageError(`--server: "${raw}" is not a URL; give Ferry's public address, e.g. https://ferry.example.org`);
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK.test(url.hostname))) {
      // NB the token is a bearer secret: over plain HTTP anyone on the path could replay it.
      throw new UsageError(`--server: "${raw}" is not https; the token would cross the network in clear text (plain http is allowed only to localhost)`);
    }
    if (url.username || url.password || url.search || url.hash) throw new UsageError(`--server: "${raw}": give only the address (no user, query or fragment); the token comes from ${TOKEN_ENV}`);
    const token = env[TOKEN_ENV] ?? '';
    // NB from the environment, never from the command line: arguments show in `ps` to every user.
    if (!token.trim()) throw new UsageError(`--server needs an admin token in ${TOKEN_ENV} (one of admin.tokens, or admin.readonlyTokens to only look); it is read from the environment so that it never shows in ps`);
    return new AdminApiClient(url, token.trim());
  }

  async call<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, opts: { query?: Record<string, string | number | undefined>; body?: unknown } = {}): Promise<T> {
    const url = new URL(`${this.base}${path}`);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: { authorization: `Bearer ${this.token}`, accept: 'application/json', ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
        // NB never follow: the token would go to wherever the redirect points.
        redirect: 'manual',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new AdminApiError(0, 'FERRY_ERR_UNREACHABLE', `cannot reach ${this.base} (${cause?.code ?? cause?.message ?? (err as Error).message})`);
    }
    if (res.status >= 300 && res.status < 400) {
      throw new AdminApiError(res.status, 'FERRY_ERR_REDIRECT', `${this.base} redirects to ${res.headers.get('location') ?? 'elsewhere'}; give the address Ferry itself serves (the token is not sent on)`);
    }
    const text = await res.text();
    let data: unknown;
    try {
      data = text ? JSON.parse(text) : undefined;
    } catch {
      data = undefined;
    }
    if (!res.ok) {
      const raw = (data as { error?: unknown } | undefined)?.error;
      // Ferry's errors are {error: {code, message}}; Fastify's own 404 has error: "Not Found".
      const e = raw && typeof raw === 'object' ? (raw as { code?: string; message?: string }) : undefined;
      if (res.status === 401) throw new AdminApiError(401, e?.code ?? 'FERRY_ERR_UNAUTHORIZED', `the server refused the token in ${TOKEN_ENV} (${e?.message ?? 'not an admin token'})`);
      if (res.status === 404 && !e) throw new AdminApiError(404, 'FERRY_ERR_NO_ADMIN_API', `${this.base} has no admin API (is admin.tokens set on that Ferry, and is this its public address?)`);
      throw new AdminApiError(res.status, e?.code ?? `HTTP_${res.status}`, e?.message ?? `${method} ${path}: HTTP ${res.status}`);
    }
    if (data === undefined) throw new AdminApiError(res.status, 'FERRY_ERR_NOT_JSON', `${method} ${path}: the answer is not JSON; is ${this.base} a Ferry?`);
    return data as T;
  }
}
