import { Readable } from 'node:stream';

/** `prefix`, then the stream `open()` gives (opened only when the first bytes are wanted). */
export function withPrefix(prefix: Buffer, open: () => Readable): Readable {
  if (!prefix.length) return open();
  return Readable.from(
    (async function* () {
      yield prefix;
      yield* open();
    })(),
    { objectMode: false, highWaterMark: 64 * 1024 },
  );
}
