// web.maxDownloads: how many times each file of a transfer may be downloaded. A zip of all
// files counts as one download of every file in it. Only counted downloads (complete bodies,
// not scanners, not prefetch, not HEAD or partial ranges) use the allowance, so a mail
// scanner can never use it up.
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
