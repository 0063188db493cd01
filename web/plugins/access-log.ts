import { globalPlugin } from './global.js';

/**
 * Link tokens are secrets (only their hashes are stored), so they must not reach the logs. The
 * app disables Fastify's own request logging, which prints raw URLs, and logs this line instead.
 */
export function redactUrl(url: string): string {
  return url.replace(/^\/t\/([^/?#]{0,4})[^/?#]*/, (_m, head: string) => `/t/${head}…`);
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
