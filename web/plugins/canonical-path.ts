import { NotFoundError } from '../errors.js';
import { globalPlugin } from './global.js';

/**
 * One path per resource. The router decodes percent-escapes and tolerates a trailing slash, so
 * `/%74/<token>` and `/t/<token>/%31/<name>` reached the same handlers as the links Ferry writes;
 * every spelling of a link is one more way for it to slip past log redaction, caches and proxy
 * rules. Ferry's own links (storage/links.ts) never percent-encode an unreserved character (RFC
 * 3986 section 2.3: letters, digits, "-", ".", "_", "~") and never have an empty segment, and
 * under /t/ never end in "/", so a request path that does is not a link Ferry wrote: 404, with
 * the same page as every other unknown path. The query string is not part of the check.
 */
const ESCAPED_UNRESERVED = /%(?:[46][1-9a-f]|[57][0-9a]|3[0-9]|2d|2e|5f|7e)/i;

export function isCanonicalPath(url: string): boolean {
  const cut = url.search(/[?#]/);
  const path = cut < 0 ? url : url.slice(0, cut);
  if (path.includes('//')) return false;
  if (ESCAPED_UNRESERVED.test(path)) return false;
  if (/^\/t\//i.test(path) && path.endsWith('/')) return false;
  return true;
}

export const canonicalPath = globalPlugin('ferry-canonical-path', async (app) => {
  app.addHook('onRequest', async (request) => {
    if (!isCanonicalPath(request.url)) throw new NotFoundError('not a canonical path');
  });
});
