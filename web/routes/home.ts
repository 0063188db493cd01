import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { homePage } from '../pages/home.js';
import type { PageContext } from '../pages/layout.js';

export interface HomeRoutesOptions {
  pageFor: (request: FastifyRequest) => PageContext;
}

export const homeRoutes: FastifyPluginAsync<HomeRoutesOptions> = async (app, { pageFor }) => {
  app.get('/', async (request, reply) =>
    reply.type('text/html; charset=utf-8').header('vary', 'accept-language').send(homePage(pageFor(request))),
  );
  // /healthz and /readyz are served by routes/health.ts.
};
