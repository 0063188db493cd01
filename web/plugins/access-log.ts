import { hashToken } from '../../storage/index.js';
import { globalPlugin } from './global.js';

/**
 * Link tokens are secrets (only their hashes are stored), so they must not reach the logs. The
 * app disables Fastify's own request logging, which prints raw URLs, and logs this line instead.
 *
 * What is logged is the normalised path, never the raw one: percent-escapes decoded, empty
 * segments dropped, and the query string left out altogether (admin requests may carry
 * `?token=`, and nothing in a query is needed to read a request log; `?…` says there was one).
 * Then the segment after `/t/` (and `/m/`), and anything elsewhere long enough to hold a token, is replaced
 * by `h:` and the first 12 hex digits of its SHA-256, the same hash the database keeps
 * (links.token_hash), so an admin can find the transfer without the link being logged. Normalising first is what makes variants such
 * as `/%74/<token>`, `/t//<token>` or `/T/<token>` come out redacted too, whatever they answer.
 */
export function redactUrl(url: string): string {
  const cut = url.search(/[?#]/);
  const rawPath = cut < 0 ? url : url.slice(0, cut);
  const segments = rawPath
    .split('/')
    .filter((s) => s !== '')
    .map(safeDecode);
  const out = segments.map((segment, i) => {
    // The token segment of a download link (/t/) and of a sender's management page (/m/), whatever
    // its length: a link cut short by a line break is still most of a secret.
    if (i === 1 && (segments[0]!.toLowerCase() === 't' || segments[0]!.toLowerCase() === 'm')) return short(segment);
    // Anywhere else, any run that could hold a token (27 or more base64url characters) goes:
    // a 404 for a mangled link path must not log the link either.
    return encodeURIComponent(segment).replace(/[A-Za-z0-9_-]{27,}/g, short);
  });
  return `/${out.join('/')}${rawPath.length > 1 && rawPath.endsWith('/') ? '/' : ''}${cut < 0 ? '' : '?…'}`;
}

function short(token: string): string {
  return `h:${hashToken(token).slice(0, 12)}`;
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
