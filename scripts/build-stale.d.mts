/** Why `root`'s dist/ must be built again, or undefined when it is current (scripts/build-stale.mjs). */
export function whyStale(root: string): string | undefined;
