import { urlSegment } from './filenames.js';

// The URLs recipients get. Both gateway (in the notice) and web (on the page) build them here,
// so they cannot drift apart.

function base(publicUrl: string): string {
  return publicUrl.replace(/\/+$/, '');
}

export function landingUrl(publicUrl: string, token: string): string {
  return `${base(publicUrl)}/t/${token}`;
}

/** The sender's private management page (issue 17); the token is its only credential. */
export function manageUrl(publicUrl: string, token: string): string {
  return `${base(publicUrl)}/m/${token}`;
}

/** `index` is the file's 1-based position in the transfer. */
export function fileUrl(publicUrl: string, token: string, index: number, name: string): string {
  return `${base(publicUrl)}/t/${token}/${index}/${urlSegment(name)}`;
}
