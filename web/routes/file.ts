import { pipeline, type Readable } from 'node:stream';
import type { FastifyPluginAsync } from 'fastify';
import { downloadUse, getFile, type BlobStore, type Db, type StoredFile } from '../../storage/index.js';
import { ByteCounter, logDownloadOnClose } from '../download-log.js';
import { LimitReachedError, NotFoundError, UnavailableError } from '../errors.js';
import { hasBody, planFileResponse } from '../file-response.js';
import { downloadLimit } from '../limits.js';
import { classifyRequest } from '../scanners.js';
import { abortOnClientGone, openBlob } from '../serve.js';

export interface FileRoutesOptions {
  db: Db;
  blobs: BlobStore;
  /** web.maxDownloads; 0 = unlimited. */
  maxDownloads: number;
  /** web.downloads: redirect answers with a presigned URL of the blob store instead of the bytes. Default proxy. */
  downloads?: { mode: 'proxy' | 'redirect'; presignExpirySeconds: number };
}

/** "1".."999999999"; anything else (0, -1, 01, 1e3) names no file. */
function parseIndex(raw: string): number | undefined {
  return /^[1-9][0-9]{0,8}$/.test(raw) ? Number(raw) : undefined;
}

/**
 * GET and HEAD /t/:token/:idx/:name. The name segment is only there so that the URL ends in
 * something readable; the file is chosen by its index, and the name sent is the record's.
 */
export const fileRoutes: FastifyPluginAsync<FileRoutesOptions> = async (app, { db, blobs, maxDownloads, downloads }) => {
  app.route<{ Params: { token: string; idx: string; name: string } }>({
    method: ['GET', 'HEAD'],
    url: '/:idx/:name',
    // Fastify's automatic HEAD route runs the GET handler and drains the stream it returns, which
    // would read the whole blob. HEAD is handled here, from the records alone.
    exposeHeadRoute: false,
    handler: async (request, reply) => {
      const transfer = request.ferryTransfer!;
      const idx = parseIndex(request.params.idx);
      const max = downloadLimit(transfer, maxDownloads);
      let file: StoredFile | undefined;
      let used = 0;
      if (idx !== undefined) {
        try {
          file = await getFile(db, transfer.id, idx);
          if (file && max > 0) used = (await downloadUse(db, transfer.id)).used(idx);
        } catch (err) {
          throw new UnavailableError('file lookup failed', { cause: err });
        }
      }
      if (!file) throw new NotFoundError('no such file');
      // Scanners and HEADs included: past the limit the file is simply not served any more.
      if (max > 0 && used >= max) throw new LimitReachedError(max, transfer.sender);

      const plan = planFileResponse(request.headers, file, { method: request.method });
      const kind = classifyRequest(request.headers);
      const isGet = request.method === 'GET';
      const bodyLength = isGet && hasBody(plan.status) ? Number(plan.headers['content-length']) : 0;
      const wholeFile = plan.status === 200 || (plan.status === 206 && plan.range?.start === 0 && plan.range.end === file.size - 1);

      // web.downloads: redirect. Reached only after the token, expiry, file and limit checks above,
      // and only for a GET that would carry bytes (conditional answers stay Ferry's own). The URL is
      // minted per request and short-lived: until it expires it bypasses revocation and limits.
      // The store sends the same Content-Disposition and Content-Type, and answers Range itself
      // (the browser repeats the Range header when it follows the redirect).
      if (downloads?.mode === 'redirect' && isGet && hasBody(plan.status)) {
        if (!blobs.presignGet) throw new UnavailableError(`the ${blobs.kind} blob store cannot presign URLs for redirect mode`);
        let location: string;
        try {
          location = await blobs.presignGet(file.blobKey, {
            expiresIn: downloads.presignExpirySeconds,
            contentDisposition: plan.headers['content-disposition'],
            contentType: plan.headers['content-type'],
          });
        } catch (err) {
          throw new UnavailableError('presigning the download URL failed', { cause: err });
        }
        logDownloadOnClose(request, reply, db, {
          transferId: file.transferId,
          fileIdx: file.idx,
          status: 302,
          bodyLength: 0,
          // Ferry never sees the bytes: a redirect for the whole file to a person counts as the download.
          countable: wholeFile && !kind.scanner && !kind.prefetch,
          kind,
        });
        return reply
          .code(302)
          .header('location', location)
          .header('cache-control', 'private, no-store')
          // The signed URL is a bearer credential: keep it out of Referer headers.
          .header('referrer-policy', 'no-referrer')
          .send();
      }

      const counter = new ByteCounter();
      logDownloadOnClose(
        request,
        reply,
        db,
        {
          transferId: file.transferId,
          fileIdx: file.idx,
          status: plan.status,
          bodyLength,
          countable: isGet && wholeFile && !kind.scanner && !kind.prefetch,
          kind,
        },
        counter,
      );
      if (!isGet || !hasBody(plan.status)) return reply.code(plan.status).headers(plan.headers).send();

      const ac = abortOnClientGone(reply);
      const blob: Readable = await openBlob(request, blobs, file, { range: plan.range, signal: ac.signal });
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
