import { pipeline, type Readable } from 'node:stream';
import type { FastifyPluginAsync } from 'fastify';
import { BlobNotFoundError, BlobStoreUnavailableError, getFile, type BlobStore, type Db, type StoredFile } from '../../storage/index.js';
import { ByteCounter, logDownloadOnClose } from '../download-log.js';
import { NotFoundError, UnavailableError } from '../errors.js';
import { hasBody, planFileResponse } from '../file-response.js';

export interface FileRoutesOptions {
  db: Db;
  blobs: BlobStore;
}

/** "1".."999999999"; anything else (0, -1, 01, 1e3) names no file. */
function parseIndex(raw: string): number | undefined {
  return /^[1-9][0-9]{0,8}$/.test(raw) ? Number(raw) : undefined;
}

/**
 * GET and HEAD /t/:token/:idx/:name. The name segment is only there so that the URL ends in
 * something readable; the file is chosen by its index, and the name sent is the record's.
 */
export const fileRoutes: FastifyPluginAsync<FileRoutesOptions> = async (app, { db, blobs }) => {
  app.route<{ Params: { token: string; idx: string; name: string } }>({
    method: ['GET', 'HEAD'],
    url: '/:idx/:name',
    // Fastify's automatic HEAD route runs the GET handler and drains the stream it returns, which
    // would read the whole blob. HEAD is handled here, from the records alone.
    exposeHeadRoute: false,
    handler: async (request, reply) => {
      const transfer = request.ferryTransfer!;
      const idx = parseIndex(request.params.idx);
      let file: StoredFile | undefined;
      if (idx !== undefined) {
        try {
          file = await getFile(db, transfer.id, idx);
        } catch (err) {
          throw new UnavailableError('file lookup failed', { cause: err });
        }
      }
      if (!file) throw new NotFoundError('no such file');

      const plan = planFileResponse(request.headers, file, { method: request.method });
      if (request.method === 'HEAD') return reply.code(plan.status).headers(plan.headers).send();

      const counter = new ByteCounter();
      logDownloadOnClose(request, reply, db, file, counter);
      if (!hasBody(plan.status)) return reply.code(plan.status).headers(plan.headers).send();

      // Stops the storage read when the client goes away, including while the blob is still being
      // opened (for S3, before the first byte arrives), not only once Fastify destroys the stream.
      const ac = new AbortController();
      reply.raw.once('close', () => {
        if (!reply.raw.writableFinished) ac.abort();
      });

      let blob: Readable;
      try {
        blob = await blobs.openRead(file.blobKey, { range: plan.range, signal: ac.signal });
      } catch (err) {
        if (err instanceof BlobNotFoundError) {
          // A live record without its bytes is a storage inconsistency worth an alert; to the
          // recipient it is simply a missing file.
          request.log.error({ transferId: transfer.id, idx: file.idx, blobKey: file.blobKey }, 'file record has no blob');
          throw new NotFoundError('blob missing');
        }
        if (err instanceof BlobStoreUnavailableError) throw new UnavailableError('blob store unavailable', { cause: err });
        throw err;
      }
      if (ac.signal.aborted) {
        blob.destroy();
        return reply.hijack();
      }

      // pipeline() ties the two streams together: when Fastify destroys the counter (client
      // gone), the blob stream is destroyed too, and the other way round.
      const body = pipeline(blob, counter, (err) => {
        if (err && !ac.signal.aborted) {
          request.log.warn({ err, transferId: transfer.id, idx: file.idx }, 'blob read failed after the response started');
        }
      });
      return reply.code(plan.status).headers(plan.headers).send(body);
    },
  });
};
