import { pipeline, Readable } from 'node:stream';
import type { FastifyPluginAsync } from 'fastify';
import { displayName, downloadUse, listFiles, type BlobStore, type Db, type StoredFile, type Transfer } from '../../storage/index.js';
import { ByteCounter, downloadStart, logDownloadOnClose, type DownloadLog } from '../download-log.js';
import { LimitReachedError, NotFoundError, UnavailableError } from '../errors.js';
import { attachmentDisposition, FILE_CSP } from '../file-response.js';
import { downloadLimit } from '../limits.js';
import { classifyRequest } from '../scanners.js';
import { servableFiles } from '../scan-block.js';
import { abortOnClientGone, openBlob } from '../serve.js';
import { planZip, zipChunks, type ZipPlan } from '../zip.js';

export interface ZipRoutesOptions {
  db: Db;
  blobs: BlobStore;
  /** Reservations and records of downloads (web/download-log.ts). */
  downloadLog: DownloadLog;
  maxDownloads: number;
  showSubject: boolean;
  /** Tests only: sizes and offsets from this value on use ZIP64 fields (default 0xFFFFFFFF). */
  zip64Threshold?: number;
}

export const ZIP_PATH = '/zip';


export function planTransferZip(files: StoredFile[], zip64Threshold?: number): ZipPlan {
  return planZip(
    files.map((f) => ({ idx: f.idx, name: f.name, size: f.size, sha256: f.sha256, mtime: f.createdAt })),
    { zip64Threshold },
  );
}

/** "Quarterly figures.zip" when the subject may be shown, else "files-2025-11-20.zip". */
export function zipFileName(transfer: Transfer, showSubject: boolean): string {
  const subject = showSubject && transfer.subject ? [...displayName(transfer.subject, '')].slice(0, 80).join('').trim() : '';
  return `${subject || `files-${new Date(transfer.createdAt).toISOString().slice(0, 10)}`}.zip`;
}

/**
 * GET and HEAD /t/:token/zip: every file of the transfer in one stored (uncompressed) ZIP,
 * streamed from the blob store with an exact Content-Length. No Range: resuming a zip would need
 * the CRC-32 of every file before the resume point, i.e. reading them all again.
 */
export const zipRoutes: FastifyPluginAsync<ZipRoutesOptions> = async (app, opts) => {
  const { db, blobs, downloadLog, maxDownloads } = opts;
  app.route<{ Params: { token: string } }>({
    method: ['GET', 'HEAD'],
    url: ZIP_PATH,
    // As for files: HEAD is answered from the records, without opening any blob.
    exposeHeadRoute: false,
    handler: async (request, reply) => {
      const transfer = request.ferryTransfer!;
      const max = downloadLimit(transfer, maxDownloads);
      let files: StoredFile[];
      try {
        // Files held or blocked by the malware scan are left out of the zip.
        files = servableFiles(await listFiles(db, transfer.id));
      } catch (err) {
        throw new UnavailableError('file listing failed', { cause: err });
      }
      if (files.length === 0) throw new NotFoundError('transfer has no files');
      const kind = classifyRequest(request.headers);
      const isGet = request.method === 'GET';

      // A zip holds every file, so it takes one allowed download of each, atomically, before its
      // first byte, and is refused as soon as one of them is used up (see routes/file.ts).
      let reservation: number | undefined;
      try {
        if (max > 0 && isGet) {
          reservation = await downloadLog.reserve(downloadStart(request, transfer.id, null, 200, kind), max);
          if (reservation === undefined) throw new LimitReachedError(max, transfer.sender);
        } else if (max > 0) {
          const use = await downloadUse(db, transfer.id, request.ferryLink?.id);
          if (files.some((f) => use.used(f.idx) >= max)) throw new LimitReachedError(max, transfer.sender);
        }
      } catch (err) {
        if (err instanceof LimitReachedError) throw err;
        throw new UnavailableError('download reservation failed', { cause: err });
      }

      const plan = planTransferZip(files, opts.zip64Threshold);
      const headers: Record<string, string> = {
        'content-type': 'application/zip',
        'content-length': String(plan.size),
        'content-disposition': attachmentDisposition(zipFileName(transfer, opts.showSubject)),
        'content-security-policy': FILE_CSP,
        'cache-control': 'private, no-store',
        'accept-ranges': 'none',
      };
      const counter = new ByteCounter();
      logDownloadOnClose(
        request,
        reply,
        downloadLog,
        { transferId: transfer.id, fileIdx: null, status: 200, bodyLength: isGet ? plan.size : 0, whole: true, reservation, kind },
        counter,
      );
      if (!isGet) return reply.code(200).headers(headers).send();

      // The first file is opened before the headers go out, so a store that is down gives the
      // 503 page rather than a broken download; the others must at least exist.
      const ac = abortOnClientGone(reply);
      const first = await openBlob(request, blobs, files[0]!, { signal: ac.signal });
      for (const f of files.slice(1)) {
        if (!(await blobs.exists(f.blobKey))) {
          first.destroy();
          request.log.error({ transferId: f.transferId, idx: f.idx, blobKey: f.blobKey }, 'file record has no blob');
          throw new NotFoundError('blob missing');
        }
      }
      if (ac.signal.aborted) {
        first.destroy();
        return reply.hijack();
      }
      const byIdx = new Map(files.map((f) => [f.idx, f]));
      const source = Readable.from(
        zipChunks(plan, async (entry) =>
          entry.idx === files[0]!.idx ? first : openBlob(request, blobs, byIdx.get(entry.idx)!, { signal: ac.signal }),
        ),
        { objectMode: false, highWaterMark: 256 * 1024 },
      );
      // If the archive is torn down before the generator reached the first file, close it here.
      source.once('close', () => first.destroy());
      const body = pipeline(source, counter, (err) => {
        if (err && !ac.signal.aborted) request.log.warn({ err, transferId: transfer.id }, 'zip stream failed after the response started');
      });
      return reply.code(200).headers(headers).send(body);
    },
  });
};
