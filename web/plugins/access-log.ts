import { hashToken } from '../../storage/index.js';
import { globalPlugin } from './global.js';

/**
 * Link tokens are secrets (only their hashes are stored), so they must not reach the logs. The
 * app disables Fastify's own request logging, which prints raw URLs, and logs this line instead:
 * the token is replaced by the first 12 hex digits of its SHA-256, the same hash the database
 * keeps (transfers.token_hash), so an admin can find the transfer without the link being logged.
 */
export function redactUrl(url: string): string {
  return url.replace(/^\/t\/([^/?#]*)/, (_m, token: string) => `/t/h:${hashToken(safeDecode(token)).slice(0, 12)}`);
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

export const accessLog = globalPlugin('ferry-access-log', async (app) => {
  app.addHook('onResponse', async (request, reply) => {
    request.log.info(
      {
        method: request.method,
        url: redactUrl(request.url),
        statusCode: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
        client: request.ip,
      },
      'request completed',
    );
  });
});
