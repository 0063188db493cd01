import type { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { BlobNotFoundError, BlobStoreUnavailableError, type BlobStore, type ByteRange, type StoredFile } from '../storage/index.js';
import { NotFoundError, UnavailableError } from './errors.js';

/** Opens a file's blob, turning storage errors into the web errors the pages are made from. */
export async function openBlob(
  request: FastifyRequest,
  blobs: BlobStore,
  file: StoredFile,
  opts: { range?: ByteRange; signal?: AbortSignal } = {},
): Promise<Readable> {
  try {
    return await blobs.openRead(file.blobKey, opts);
  } catch (err) {
    if (err instanceof BlobNotFoundError) {
      // A live record without its bytes is a storage inconsistency worth an alert; to the
      // recipient it is simply a missing file.
      request.log.error({ transferId: file.transferId, idx: file.idx, blobKey: file.blobKey }, 'file record has no blob');
      throw new NotFoundError('blob missing');
    }
    if (err instanceof BlobStoreUnavailableError) throw new UnavailableError('blob store unavailable', { cause: err });
    throw err;
  }
}

/**
 * An AbortController that fires when the client goes away before the response finished, so a
 * storage read stops even while a blob is still being opened (for S3, before the first byte).
 */
export function abortOnClientGone(reply: FastifyReply): AbortController {
  const ac = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) ac.abort();
  });
  return ac;
}
