// web.maxDownloads: how many times each file of a transfer may be downloaded. A zip of all
// files counts as one download of every file in it. A download is one client having been sent
// the whole file, whoever it says it is; HEAD and short previews (partial ranges) use nothing.
// Every request that sends bytes holds one of the allowed downloads while it runs, reserved
// atomically before its first byte (storage/download-slots.ts), so at most the limit ever start.
//
// The counting is per file rather than per transfer on purpose: with a per-transfer total, a
// limit of 1 on a three-file message would let the recipient download one file and lose the
// other two, the "links expire too soon" complaint users of other products have.

/**
 * The download limit that applies to a transfer: the one its retention rule set when it was
 * stored, else the site's web.maxDownloads. 0 = unlimited.
 */
export function downloadLimit(transfer: { maxDownloads: number | null }, siteMax: number): number {
  return transfer.maxDownloads ?? siteMax;
}
