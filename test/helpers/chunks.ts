/** `input` cut at the given offsets (in any order); empty pieces are left out. */
export function splitAt(input: Buffer, cuts: number[]): Buffer[] {
  const chunks: Buffer[] = [];
  let from = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    chunks.push(input.subarray(from, cut));
    from = cut;
  }
  chunks.push(input.subarray(from));
  return chunks.filter((c) => c.length > 0);
}

/** `input` in pieces of `size` bytes (the last may be shorter). */
export function inChunks(input: Buffer, size: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let i = 0; i < input.length; i += size) chunks.push(input.subarray(i, i + size));
  return chunks;
}
