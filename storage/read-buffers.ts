/**
 * The read buffers of one process's blob reads, held to one budget.
 *
 * Large reads cost fewer trips through the JavaScript stream machinery per byte (a 1 GiB
 * download in 1 MiB reads is a thousand of them instead of 4,000 at 256 KiB), but each open read
 * holds two buffers of its size (a download: the one being read and the one being written; a
 * stream reader: the one it holds and the next). So a read reserves its two buffers when it opens:
 * the largest size from `max` down to `min` (halving) that still fits in what the open reads have
 * left of the budget, and `min` once nothing fits. The sum is what the reads hold, whenever they
 * opened: sizing each read by the number of reads open at its start, as the first version did,
 * left the first sixteen of a hundred downloads at 1 MiB and the sum near twice the budget.
 *
 * Buffers a direct download is done with (its write has called back) are kept for the next
 * download instead of being left to the garbage collector, as long as the kept ones and the
 * reserved ones stay within the budget: freed buffers of these sizes are what the C heap kept
 * from one burst of downloads to the next (docs/performance.md, "Download path"). A buffer handed
 * to a consumer that may keep it (a stream reader) is never taken back.
 */
export class ReadBuffers {
  private reserved = 0;
  private keptBytes = 0;
  private readonly kept = new Map<number, Buffer[]>();

  /**
   * @param budget bytes the reads of this process hold at most (beyond it, each read gets `min`)
   * @param max the read size while the budget allows it
   * @param min the smallest read size; a power-of-two fraction of `max`
   * @param perRead buffers each open read holds
   */
  constructor(
    readonly budget: number,
    readonly max: number,
    readonly min: number,
    readonly perRead = 2,
  ) {}

  /** Bytes reserved by the reads open now. */
  get inUse(): number {
    return this.reserved;
  }

  /**
   * Reserves the buffers of one read: its read size, and the kept buffers of that size it takes
   * over (up to `perRead`; the caller allocates the rest). Pair with release(size).
   */
  reserve(): { size: number; kept: Buffer[] } {
    let size = this.max;
    while (size > this.min && this.reserved + this.perRead * size > this.budget) size /= 2;
    this.reserved += this.perRead * size;
    const list = this.kept.get(size);
    const kept = list ? list.splice(Math.max(0, list.length - this.perRead)) : [];
    this.keptBytes -= kept.length * size;
    this.trim();
    return { size, kept };
  }

  release(size: number): void {
    this.reserved = Math.max(0, this.reserved - this.perRead * size);
  }

  /** Gives back a buffer nothing refers to any more; kept for the next read while within the budget. */
  give(buf: Buffer): void {
    if (buf.byteOffset !== 0 || buf.buffer.byteLength !== buf.length) return;
    if (this.reserved + this.keptBytes + buf.length > this.budget) return;
    let list = this.kept.get(buf.length);
    if (!list) this.kept.set(buf.length, (list = []));
    list.push(buf);
    this.keptBytes += buf.length;
  }

  /** Drops kept buffers while reserved and kept together exceed the budget. */
  private trim(): void {
    for (const [size, list] of this.kept) {
      while (list.length && this.reserved + this.keptBytes > this.budget) {
        list.pop();
        this.keptBytes -= size;
      }
    }
  }
}
