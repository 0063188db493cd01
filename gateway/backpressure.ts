import type { Writable } from 'node:stream';

/**
 * Resolves on the stream's next 'drain' or 'close', removing both listeners either way: a long
 * upload waits thousands of times, and listeners left behind would pile up.
 */
export function drainOrClose(stream: Writable): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}
