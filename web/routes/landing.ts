import type { FastifyPluginAsync } from 'fastify';
import { listFiles, type Db, type StoredFile } from '../../storage/index.js';
import { UnavailableError } from '../errors.js';
import type { PageContext } from '../pages/layout.js';
import { landingPage } from '../pages/landing.js';

export interface LandingRoutesOptions {
  db: Db;
  publicUrl: string;
  page: PageContext;
}

/** GET /t/:token: the list of files. Looking at it is not a download and is not logged as one. */
export const landingRoutes: FastifyPluginAsync<LandingRoutesOptions> = async (app, { db, publicUrl, page }) => {
  app.get<{ Params: { token: string } }>('/', async (request, reply) => {
    const transfer = request.ferryTransfer!;
    let files: StoredFile[];
    try {
      files = await listFiles(db, transfer.id);
    } catch (err) {
      throw new UnavailableError('file listing failed', { cause: err });
    }
    return reply
      .type('text/html; charset=utf-8')
      .send(landingPage(page, { publicUrl, token: request.params.token, transfer, files }));
  });
};
