import net from 'node:net';
import type { EngineName, ScanOutcome, ScanResult, ScanSession, Scanner } from './types.js';

// An ICAP client (RFC 3507) for RESPMOD with preview and a chunked body: the file is sent as the
// body of an HTTP response, the service answers 204 (unmodified: clean) or 200 with a
// replacement (blocked; c-icap's virus_scan and most vendors name the threat in
// X-Infection-Found or X-Virus-ID). The service's ISTag changes with its signatures and serves
// as the signature version.
//
// Hand-written: the npm ICAP clients (icap-client, node-icap) are servers or unmaintained, and
// none streams a body with backpressure; the subset needed here (one request per connection,
// preview, 100 Continue, 204) is short.

export interface IcapOptions {
  /** icap://host:port/service */
  url: string;
  timeoutMs: number;
}

interface IcapHead {
  status: number;
  headers: Map<string, string>;
}

/** Reads an ICAP response head (status line and headers) from the socket. */
function parseHead(text: string): IcapHead | undefined {
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const lines = text.slice(0, end).split('\r\n');
  const m = /^ICAP\/1\.0 (\d{3})/.exec(lines[0] ?? '');
  const headers = new Map<string, string>();
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers.set(l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim());
  }
  return { status: m ? Number(m[1]) : 0, headers };
}

function target(url: string): { host: string; port: number; url: string } {
  const u = new URL(url);
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 1344), url };
}

/** "Type=0; Resolution=2; Threat=Eicar-Test-Signature;" or a plain X-Virus-ID value -> the name. */
function threatName(h: Map<string, string>): string {
  const found = h.get('x-infection-found');
  const m = found ? /Threat=([^;]+)/i.exec(found) : null;
  return (m?.[1] ?? h.get('x-virus-id') ?? 'unknown threat').trim().slice(0, 200);
}

export class IcapScanner implements Scanner {
  readonly engine: EngineName = 'icap';
  readonly label = 'the ICAP service';
  private preview: number | undefined;
  private lastTag: string | null = null;

  constructor(private readonly opts: IcapOptions) {}

  /** OPTIONS: the ISTag (signature version) and the preview size the service asks for. */
  async version(): Promise<string> {
    const t = target(this.opts.url);
    const head = await new Promise<IcapHead>((resolve, reject) => {
      const sock = net.connect({ host: t.host, port: t.port });
      let buf = '';
      sock.setTimeout(this.opts.timeoutMs, () => sock.destroy(new Error(`the ICAP service did not answer within ${this.opts.timeoutMs} ms`)));
      sock.setEncoding('latin1');
      sock.on('data', (d: string) => {
        buf += d;
        const h = parseHead(buf);
        if (h) {
          sock.destroy();
          resolve(h);
        }
      });
      sock.on('error', reject);
      sock.on('close', () => reject(new Error('the ICAP service closed the connection without an answer')));
      sock.write(`OPTIONS ${t.url} ICAP/1.0\r\nHost: ${t.host}\r\nEncapsulated: null-body=0\r\n\r\n`);
    });
    if (head.status !== 200) throw new Error(`the ICAP service answered OPTIONS with ${head.status}`);
    const p = Number(head.headers.get('preview'));
    this.preview = Number.isInteger(p) && p >= 0 ? Math.min(p, 64 * 1024) : 0;
    const tag = (head.headers.get('istag') ?? '').replace(/^"|"$/g, '');
    this.lastTag = tag || 'unknown';
    return this.lastTag;
  }

  start(): ScanSession {
    const ready = this.preview === undefined ? this.version().then(() => undefined) : Promise.resolve();
    return new IcapSession(this, this.opts, ready);
  }

  get previewSize(): number {
    return this.preview ?? 0;
  }

  versionForScan(): Promise<string | null> {
    return this.version().catch(() => this.lastTag);
  }
}

class IcapSession implements ScanSession {
  readonly result: Promise<ScanResult>;
  private sock: net.Socket | undefined;
  private state: 'connecting' | 'preview' | 'wait100' | 'body' | 'done' = 'connecting';
  /** Bytes held until the preview is full (at most the preview size) or the session is ready. */
  private held: Buffer[] = [];
  private heldLen = 0;
  private ended = false;
  private answer = '';
  private settle!: (o: ScanOutcome) => void;
  private waiters: (() => void)[] = [];
  private readonly t0 = Date.now();
  private readonly scanner: IcapScanner;
  private readonly opts: IcapOptions;

  constructor(scanner: IcapScanner, opts: IcapOptions, ready: Promise<void>) {
    this.scanner = scanner;
    this.opts = opts;
    const outcome = new Promise<ScanOutcome>((resolve) => (this.settle = resolve));
    const version = ready.then(
      () => scanner.versionForScan(),
      () => null,
    );
    this.result = Promise.all([outcome, version]).then(([o, v]) => ({ outcome: o, engine: scanner.engine, version: v, at: Date.now(), ms: Date.now() - this.t0 }));
    ready.then(
      () => this.connect(),
      (err: Error) => this.fail(`ICAP: ${(err as NodeJS.ErrnoException).code ?? err.message}`),
    );
  }

  private connect(): void {
    if (this.state === 'done') return;
    const t = target(this.opts.url);
    const sock = net.connect({ host: t.host, port: t.port });
    this.sock = sock;
    sock.setTimeout(this.opts.timeoutMs, () => this.fail(`no progress from the ICAP service within ${this.opts.timeoutMs} ms`));
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => this.onData(d));
    sock.on('error', (err: NodeJS.ErrnoException) => this.fail(`ICAP: ${err.code ?? err.message}`));
    sock.on('close', () => this.fail('the ICAP service closed the connection without an answer'));
    sock.on('drain', () => this.wake());
    const reqHdr = `GET /ferry-file HTTP/1.1\r\nHost: ferry\r\n\r\n`;
    const resHdr = `HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n`;
    sock.write(
      `RESPMOD ${t.url} ICAP/1.0\r\nHost: ${t.host}\r\nAllow: 204\r\nPreview: ${this.scanner.previewSize}\r\n` +
        `Encapsulated: req-hdr=0, res-hdr=${reqHdr.length}, res-body=${reqHdr.length + resHdr.length}\r\n\r\n${reqHdr}${resHdr}`,
    );
    this.state = 'preview';
    this.pump();
  }

  /** Sends what the state allows: the preview once full (or at the end), the rest after 100 Continue. */
  private pump(): void {
    const sock = this.sock;
    if (!sock || this.state === 'done' || this.state === 'connecting' || this.state === 'wait100') return;
    if (this.state === 'preview') {
      const size = this.scanner.previewSize;
      if (this.heldLen < size && !this.ended) return;
      const all = Buffer.concat(this.held, this.heldLen);
      const pre = all.subarray(0, size);
      if (pre.length) sock.write(`${pre.length.toString(16)}\r\n`), sock.write(pre), sock.write('\r\n');
      this.held = all.length > size ? [all.subarray(size)] : [];
      this.heldLen = all.length - pre.length;
      // NB RFC 3507 4.5: "ieof" tells the service the preview is the whole body, so it must not
      // wait for (and we must not send) anything after it.
      if (this.ended && this.heldLen === 0) {
        sock.write('0; ieof\r\n\r\n');
        this.state = 'wait100';
        this.ieof = true;
      } else {
        sock.write('0\r\n\r\n');
        this.state = 'wait100';
      }
      return;
    }
    if (this.state === 'body') {
      for (const b of this.held) if (b.length) sock.write(`${b.length.toString(16)}\r\n`), sock.write(b), sock.write('\r\n');
      this.held = [];
      this.heldLen = 0;
      if (this.ended && !this.endSent) {
        this.endSent = true;
        sock.write('0\r\n\r\n');
      }
      this.wake();
    }
  }

  private ieof = false;
  private endSent = false;

  private onData(d: string): void {
    this.answer += d;
    const head = parseHead(this.answer);
    if (!head) return;
    if (head.status === 100 && this.state === 'wait100' && !this.ieof) {
      this.answer = this.answer.slice(this.answer.indexOf('\r\n\r\n') + 4);
      this.state = 'body';
      this.pump();
      return;
    }
    if (head.status === 204) return this.finish({ verdict: 'clean' });
    if (head.status === 200) {
      // NB a 200 is a replacement: a block page when the service names a threat, or (services that
      // ignore Allow: 204) the file sent back unchanged. The latter only counts once the service has
      // had the whole file; a 200 before that is a service streaming data back unscanned
      // (c-icap virus_scan's SendPercentData), which gives no verdict.
      if (head.headers.has('x-infection-found') || head.headers.has('x-virus-id')) return this.finish({ verdict: 'infected', signature: threatName(head.headers) });
      if (this.endSent || this.ieof) return this.finish({ verdict: 'clean' });
      return this.finish({ verdict: 'error', detail: 'the ICAP service answered before it had the whole file (use mode=simple, see docs/scanning.md)' });
    }
    if (head.status === 413) return this.finish({ verdict: 'too_large', detail: 'the ICAP service refused the file as too large' });
    this.finish({ verdict: 'error', detail: `the ICAP service answered ${head.status || 'something unreadable'}` });
  }

  write(chunk: Buffer): boolean {
    if (this.state === 'done') return true;
    this.held.push(chunk);
    this.heldLen += chunk.length;
    this.pump();
    return this.canTakeMore();
  }

  private canTakeMore(): boolean {
    if (this.state === 'done') return true;
    // Before the service said "continue", hold at most one preview plus one chunk.
    if (this.state !== 'body') return this.heldLen <= this.scanner.previewSize;
    return !this.sock?.writableNeedDrain;
  }

  drained(): Promise<void> {
    if (this.canTakeMore()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private wake(): void {
    if (!this.canTakeMore()) return;
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  end(): void {
    this.ended = true;
    this.pump();
  }

  abort(): void {
    this.fail('scan aborted');
  }

  private finish(o: ScanOutcome): void {
    if (this.state === 'done') return;
    this.state = 'done';
    this.held = [];
    this.heldLen = 0;
    this.sock?.destroy();
    this.settle(o);
    this.wake();
  }

  private fail(detail: string): void {
    this.finish({ verdict: 'error', detail });
  }
}
