import { html, type Html } from './html.js';

// The type icon beside each file: a page shape coloured by kind, with the extension written on
// it. Inline SVG (no image request, allowed by the CSP because it is markup, not script or
// style); colours come from the stylesheet through the kind class.

export type FileKind = 'pdf' | 'doc' | 'sheet' | 'slides' | 'image' | 'video' | 'audio' | 'archive' | 'text' | 'other';

const BY_EXT: Record<string, FileKind> = {};
const add = (kind: FileKind, exts: string) => exts.split(' ').forEach((e) => (BY_EXT[e] = kind));
add('pdf', 'pdf');
add('doc', 'doc docx odt rtf pages');
add('sheet', 'xls xlsx xlsm ods csv tsv numbers');
add('slides', 'ppt pptx odp key');
add('image', 'png jpg jpeg gif webp heic heif tif tiff bmp svg raw cr2 nef dng psd ai eps');
add('video', 'mp4 mov m4v avi mkv webm wmv mpg mpeg');
add('audio', 'mp3 wav m4a aac flac ogg oga opus wma aiff');
add('archive', 'zip 7z rar tar gz tgz bz2 xz zst iso dmg');
add('text', 'txt md log json xml yaml yml html htm css js ts py java c h cpp sql eml ics vcf');

const BY_TYPE: [RegExp, FileKind][] = [
  [/^application\/pdf$/, 'pdf'],
  [/^image\//, 'image'],
  [/^video\//, 'video'],
  [/^audio\//, 'audio'],
  [/^text\//, 'text'],
  [/(zip|compressed|x-tar|gzip|x-7z|x-rar)/, 'archive'],
  [/(spreadsheet|ms-excel)/, 'sheet'],
  [/(presentation|powerpoint)/, 'slides'],
  [/(wordprocessing|msword|opendocument\.text|rtf)/, 'doc'],
];

export function extensionOf(name: string): string {
  const dot = name.lastIndexOf('.');
  if (dot <= 0 || dot === name.length - 1) return '';
  const ext = name.slice(dot + 1).toLowerCase();
  return /^[a-z0-9]{1,5}$/.test(ext) ? ext : '';
}

export function fileKind(name: string, contentType: string): FileKind {
  const ext = extensionOf(name);
  if (ext && BY_EXT[ext]) return BY_EXT[ext]!;
  const type = contentType.toLowerCase();
  for (const [re, kind] of BY_TYPE) if (re.test(type)) return kind;
  return 'other';
}

export function fileIcon(name: string, contentType: string): Html {
  const kind = fileKind(name, contentType);
  const label = extensionOf(name).slice(0, 4).toUpperCase() || 'FILE';
  const size = label.length <= 3 ? '11' : '9.5';
  return html`<svg class="ficon k-${kind}" viewBox="0 0 40 48" width="40" height="48" aria-hidden="true" focusable="false"><path class="page" d="M6 1h21l12 12v31a3 3 0 0 1-3 3H6a3 3 0 0 1-3-3V4a3 3 0 0 1 3-3z"/><path class="fold" d="M27 1v9a3 3 0 0 0 3 3h9"/><text x="21" y="36" text-anchor="middle" font-size="${size}">${label}</text></svg>`;
}
