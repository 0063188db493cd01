/**
 * How much one stage of a message's pipeline queues before it makes the stage before it wait.
 *
 * Node's default for an object-mode stream is 16 objects a side, and in a message's pipeline an
 * object is a chunk of the body: up to 64 KiB from the socket during DATA, 256 KiB pieces in the
 * notice pass. Behind a slower file write every stage filled up, about 3 MB per message in
 * flight, and those buffers lived long enough to be promoted and wait for a full collection: with
 * twenty sessions of mixed mail the buffers still alive after a mark-compact were 12-20 MB per
 * worker, most of them in stream queues (heap snapshot, docs/performance.md, "Bytes in flight
 * per message"). Four objects keep the disk as busy (one write in flight, more queued behind it)
 * and hold a quarter as much.
 */
export const STAGE_OBJECTS = 4;

/**
 * Decoded bytes that wait between an offloaded part's decoder and the blob store's writer: one
 * decoded piece (48 KiB per 64 KiB of base64) and a little; the file's write stream queues its
 * own 256 KiB behind it.
 */
export const DECODED_QUEUE_BYTES = 64 * 1024;

/**
 * Sets how many objects `stream` queues on `side`. For the streams whose options are not ours:
 * mailsplit's Splitter and Joiner fix their options in their constructors.
 * NB `highWaterMark` of a stream's state is read on every write and push, so setting it after
 * construction takes effect; Node offers no public setter (only the `...HighWaterMark` getters,
 * which read the same field and are what test/gateway/stage-queues.test.ts checks).
 */
export function queueObjects<S extends object>(stream: S, side: 'readable' | 'writable', objects = STAGE_OBJECTS): S {
  const state = (stream as unknown as Record<string, { highWaterMark: number } | undefined>)[side === 'readable' ? '_readableState' : '_writableState'];
  if (!state) throw new TypeError(`queueObjects: the stream has no ${side} side`);
  state.highWaterMark = objects;
  return stream;
}
