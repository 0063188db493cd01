import type { FastifyPluginAsync } from 'fastify';
import { FERRY_CSS } from '../assets/ferry-css.js';

export const STYLESHEET_PATH = '/assets/ferry.css';

export const assetRoutes: FastifyPluginAsync = async (app) => {
  app.get(STYLESHEET_PATH, async (_request, reply) =>
    // The stylesheet holds nothing private; an hour of caching spares slow lines a request per page.
    reply.type('text/css; charset=utf-8').header('cache-control', 'public, max-age=3600').send(FERRY_CSS),
  );
};
