import type { RequestHeaders } from './file-response.js';

// Mail security scanners (Microsoft Defender Safe Links, Proofpoint, Mimecast, Barracuda...),
// link-preview bots and browser prefetch fetch links that nobody clicked. Their requests are
// served and logged, and marked (downloads.scanner, the metrics' reasons). Marked, not exempt:
// a User-Agent is the client's own claim, so a full GET that says "Teams" is a full copy and
// counts like any other (issue 15 item 4). What scanners usually do costs nothing anyway: the
// mail links only to the landing page, which is never a download, and HEAD and short previews
// (partial ranges) never count (storage/download-slots.ts).

/** Substrings of User-Agent values sent by scanners, preview bots and HTTP libraries (case-insensitive). */
const SCANNER_AGENTS = [
  // Mail security gateways and URL rewriters.
  'barracuda',
  'mimecast',
  'proofpoint',
  'safelinks',
  'trendmicro',
  'trend micro',
  'symantec',
  'forcepoint',
  'sophos',
  'fortiguard',
  'zscaler',
  'cisco',
  'ironport',
  'paloalto',
  'checkpoint',
  // Office and chat link checks and previews.
  'microsoft office',
  'ms-office',
  'msoffice',
  'skypeuripreview',
  'microsoftpreview',
  'teams',
  'slackbot',
  'slack-imgproxy',
  'discordbot',
  'telegrambot',
  'whatsapp',
  'facebookexternalhit',
  'twitterbot',
  'linkedinbot',
  'googlebot',
  'google-safety',
  'adsbot-google',
  'bingbot',
  'bingpreview',
  'applebot',
  'yandexbot',
  'duckduckbot',
  // Automated browsers and HTTP libraries that scanners are built on. curl and wget are left
  // out on purpose: recipients use them (`curl -C -`, `wget -c`) to resume large downloads.
  'headlesschrome',
  'phantomjs',
  'python-requests',
  'python-urllib',
  'aiohttp',
  'go-http-client',
  'java/',
  'apache-httpclient',
  'okhttp',
  'libwww-perl',
  'node-fetch',
  'undici',
  'axios',
  'scrapy',
  'bot/',
  'crawler',
  'spider',
  'scanner',
  'preview',
];

export interface RequestKind {
  /** A known scanner, preview bot or automated client (or no User-Agent at all). */
  scanner: boolean;
  /** The browser says this is a speculative fetch (prefetch or prerender), not a visit. */
  prefetch: boolean;
}

function header(headers: RequestHeaders, name: string): string {
  const v = headers[name];
  return (Array.isArray(v) ? v.join(', ') : (v ?? '')).toLowerCase();
}

export function isScannerAgent(userAgent: string | undefined): boolean {
  // Every browser sends a User-Agent; its absence is a script.
  if (!userAgent || !userAgent.trim()) return true;
  const ua = userAgent.toLowerCase();
  return SCANNER_AGENTS.some((s) => ua.includes(s));
}

export function classifyRequest(headers: RequestHeaders): RequestKind {
  const purpose = `${header(headers, 'sec-purpose')} ${header(headers, 'purpose')} ${header(headers, 'x-purpose')} ${header(headers, 'x-moz')}`;
  const ua = headers['user-agent'];
  return {
    scanner: isScannerAgent(Array.isArray(ua) ? ua.join(' ') : ua),
    prefetch: /\b(prefetch|prerender|preview)\b/.test(purpose),
  };
}
