import type { Readable } from 'node:stream';
import type { FastifyPluginAsync } from 'fastify';
import { downloadUse, getFile, type BlobStore, type Db, type StoredFile } from '../../storage/index.js';
import { ByteCounter, downloadStart, logDownloadOnClose, type DownloadLog } from '../download-log.js';
import { LimitReachedError, NotFoundError, UnavailableError } from '../errors.js';
import { fileBody } from '../file-body.js';
import { hasBody, planFileResponse } from '../file-response.js';
import { downloadLimit } from '../limits.js';
import { classifyRequest } from '../scanners.js';
import { assertServable } from '../scan-block.js';
import { abortOnClientGone, openBlob } from '../serve.js';

export interface FileRoutesOptions {
  db: Db;
  blobs: BlobStore;
  /** Reservations and records of downloads (web/download-log.ts). */
  downloadLog: DownloadLog;
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
export const fileRoutes: FastifyPluginAsync<FileRoutesOptions> = async (app, { db, blobs, downloadLog, maxDownloads, downloads }) => {
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
      if (idx !== undefined) {
        try {
          file = await getFile(db, transfer.id, idx);
        } catch (err) {
          throw new UnavailableError('file lookup failed', { cause: err });
        }
      }
      if (!file) throw new NotFoundError('no such file');
      assertServable(file, transfer.sender); // held or blocked by the malware scan: never its bytes

      const plan = planFileResponse(request.headers, file, { method: request.method });
      const kind = classifyRequest(request.headers);
      const isGet = request.method === 'GET';
      const redirect = downloads?.mode === 'redirect' && isGet && hasBody(plan.status);
      const status = redirect ? 302 : plan.status;
      const bodyLength = isGet && hasBody(plan.status) && !redirect ? Number(plan.headers['content-length']) : 0;
      const wholeFile = plan.status === 200 || (plan.status === 206 && plan.range?.start === 0 && plan.range.end === file.size - 1);

      // The limit. A request that hands out file bytes (or a redirect to them) takes one of the
      // file's allowed downloads before its first byte, atomically, whoever asks: scanners and
      // prefetches included, since a full GET is a full copy whatever the User-Agent says. It
      // gets it back if the response ends short of a complete download (storage/download-slots.ts).
      // HEAD and bodiless answers take nothing, but past the limit the file is not served at all.
      let reservation: number | undefined;
      try {
        if (max > 0 && isGet && hasBody(plan.status)) {
          reservation = await downloadLog.reserve(downloadStart(request, transfer.id, file.idx, status, kind), max);
          if (reservation === undefined) throw new LimitReachedError(max, transfer.sender);
        } else if (max > 0 && (await downloadUse(db, transfer.id, request.ferryLink?.id)).used(file.idx) >= max) {
          throw new LimitReachedError(max, transfer.sender);
        }
      } catch (err) {
        if (err instanceof LimitReachedError) throw err;
        throw new UnavailableError('download reservation failed', { cause: err });
      }
      // From here on the response ends in a record, which settles the reservation.
      const counter = new ByteCounter();
      logDownloadOnClose(
        request,
        reply,
        downloadLog,
        { transferId: file.transferId, fileIdx: file.idx, status, bodyLength, whole: wholeFile, fileSize: file.size, reservation, kind },
        redirect ? undefined : counter,
      );

      // web.downloads: redirect. Reached only after the token, expiry, file and limit checks above,
      // and only for a GET that would carry bytes (conditional answers stay Ferry's own). The URL is
      // minted per request and short-lived: until it expires it bypasses revocation and limits.
      // The store sends the same Content-Disposition and Content-Type, and answers Range itself
      // (the browser repeats the Range header when it follows the redirect). Ferry never sees the
      // bytes: a redirect for the whole file counts as the download once it is sent.
      if (redirect) {
        if (!blobs.presignGet) throw new UnavailableError(`the ${blobs.kind} blob store cannot presign URLs for redirect mode`);
        let location: string;
        try {
          location = await blobs.presignGet(file.blobKey, {
            expiresIn: downloads!.presignExpirySeconds,
            contentDisposition: plan.headers['content-disposition'],
            contentType: plan.headers['content-type'],
          });
        } catch (err) {
          throw new UnavailableError('presigning the download URL failed', { cause: err });
        }
        return reply
          .code(302)
          .header('location', location)
          .header('cache-control', 'private, no-store')
          // The signed URL is a bearer credential: keep it out of Referer headers.
          .header('referrer-policy', 'no-referrer')
          .send();
      }

      if (!isGet || !hasBody(plan.status)) return reply.code(plan.status).headers(plan.headers).send();

      const ac = abortOnClientGone(reply);
      const blob: Readable = await openBlob(request, blobs, file, { range: plan.range, signal: ac.signal });
      if (ac.signal.aborted) {
        blob.destroy();
        return reply.hijack();
      }

      // The blob into the response, counted (web/file-body.ts): a file store blob writes itself
      // from two reused buffers; any other goes through the counter. Either way the blob stops
      // when the client goes away, and a storage failure after the first byte is logged here.
      const body = fileBody(blob, reply.raw, counter, (err) => {
        if (err && !ac.signal.aborted) {
          request.log.warn({ err, transferId: transfer.id, idx: file.idx }, 'blob read failed after the response started');
        }
      });
      return reply.code(plan.status).headers(plan.headers).send(body);
    },
  });
};
