import type { FastifyPluginAsync } from 'fastify';
import { homePage } from '../pages/home.js';
import type { PageContext } from '../pages/layout.js';

export interface HomeRoutesOptions {
  page: PageContext;
}

export const homeRoutes: FastifyPluginAsync<HomeRoutesOptions> = async (app, { page }) => {
  app.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').send(homePage(page)));
  // Liveness only: a load balancer should not take a node out because storage is slow.
  app.get('/healthz', async (_request, reply) => reply.type('text/plain; charset=utf-8').send('ok'));
};
