import type { ServerResponse } from 'node:http';
import { finished, pipeline, type Readable } from 'node:stream';
import { FileBlobStream } from '../storage/index.js';
import type { ByteCounter } from './download-log.js';

/**
 * The body of a file response, its bytes counted into `counter` as they are handed to the
 * response (the download log's bytes sent). A blob of the file store writes itself into the
 * response from two buffers it reuses (storage/fs-blob-store.ts, FileBlobStream): no buffer per
 * read, no Transform in the path. Any other blob (S3) passes through the counter. Either way,
 * when Fastify destroys the body because the client went away, the blob stops reading, and
 * `done` hears once how the body ended (an error, or a premature close when the client left).
 */
export function fileBody(blob: Readable, res: ServerResponse, counter: ByteCounter, done: (err?: Error | null) => void): Readable {
  if (blob instanceof FileBlobStream) {
    blob.sendTo(res, (n) => (counter.bytes += n));
    finished(blob, done);
    return blob;
  }
  return pipeline(blob, counter, done);
}
