import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { downloadUse, fileUrl, landingUrl, listFiles, type Db, type DownloadUse, type FileScan, type StoredFile } from '../../storage/index.js';
import { LimitReachedError, UnavailableError } from '../errors.js';
import { downloadLimit } from '../limits.js';
import { landingPage } from '../pages/landing.js';
import { scansOf } from '../scan-block.js';
import type { PageContext } from '../pages/layout.js';
import { planTransferZip, ZIP_PATH } from './zip.js';

export interface LandingRoutesOptions {
  db: Db;
  publicUrl: string;
  showSubject: boolean;
  maxDownloads: number;
  now: () => number;
  zip64Threshold?: number;
  pageFor: (request: FastifyRequest) => PageContext;
}

/**
 * GET /t/:token: the landing page, the only address the mail links to. Looking at it is never a
 * download and opens no blob, so a mail scanner that fetches it uses nothing up.
 */
export const landingRoutes: FastifyPluginAsync<LandingRoutesOptions> = async (app, opts) => {
  const { db, publicUrl, maxDownloads } = opts;
  // Links on the page are paths, built by the same functions as the links in the mail; the path
  // keeps the public URL's prefix, the host is whatever served the page.
  const path = (url: string) => new URL(url).pathname;

  app.get<{ Params: { token: string } }>('/', async (request, reply) => {
    const transfer = request.ferryTransfer!;
    const token = request.params.token;
    const max = downloadLimit(transfer, maxDownloads);
    let files: StoredFile[];
    let use: DownloadUse | undefined;
    let scans: Map<number, FileScan>;
    try {
      files = await listFiles(db, transfer.id);
      scans = await scansOf(db, transfer.id);
      if (max > 0) use = await downloadUse(db, transfer.id, request.ferryLink?.id);
    } catch (err) {
      throw new UnavailableError('file listing failed', { cause: err });
    }
    if (use && files.length > 0 && files.every((f) => use.used(f.idx) >= max)) {
      throw new LimitReachedError(max, transfer.sender);
    }
    const page = landingPage(opts.pageFor(request), {
      transfer,
      files,
      fileHref: (f) => path(fileUrl(publicUrl, token, f.idx, f.name)),
      zipHref: path(landingUrl(publicUrl, token)) + ZIP_PATH,
      // The zip leaves out files held or blocked by the malware scan.
      zipSize: planTransferZip(files.filter((f) => !scans.get(f.idx)?.blocked), opts.zip64Threshold).size,
      scans,
      showSubject: opts.showSubject,
      now: opts.now(),
      limit: use ? { max, used: new Map(files.map((f) => [f.idx, use.used(f.idx)])) } : undefined,
    });
    return reply.type('text/html; charset=utf-8').header('vary', 'accept-language').send(page);
  });
};
