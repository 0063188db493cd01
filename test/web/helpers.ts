import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import {
  addFile,
  createTransfer,
  FsBlobStore,
  hashToken,
  markLive,
  newBlobKey,
  newId,
  newLinkId,
  newQueueId,
  newToken,
  openDatabase,
  setState,
  type BlobStore,
  type ByteRange,
  type Db,
  type TransferState,
} from '../../storage/index.js';

export const PUBLIC_URL = 'https://files.example.test';

export interface Env {
  dir: string;
  db: Db;
  blobs: FsBlobStore;
  close(): Promise<void>;
}

/**
 * A temporary database and blob store. `memory: true` puts them on tmpfs (/dev/shm) where there
 * is one: reading a hole of a sparse file there costs no disk page cache, about five times faster
 * than ext4, which is what the 4 GiB zip test spends its time on.
 */
export async function makeEnv(opts: { memory?: boolean } = {}): Promise<Env> {
  const dir = fs.mkdtempSync(path.join(opts.memory && isWritableDir('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'ferry-web-test-'));
  const db = await openDatabase(`sqlite:${dir}/db.sqlite`);
  const blobs = new FsBlobStore(`${dir}/blobs`);
  return {
    dir,
    db,
    blobs,
    async close() {
      await db.destroy();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function isWritableDir(dir: string): boolean {
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    return fs.statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

export interface FixtureFile {
  name: string;
  contentType?: string;
  data: Buffer;
}

export interface Fixture {
  /** The transfer's own token; with linkPerRecipient it is given to nobody. */
  token: string;
  transferId: string;
  files: { idx: number; name: string; data: Buffer; sha256: string; blobKey: string }[];
  /** With linkPerRecipient: one link per recipient, in the order of `recipients`. */
  links: { id: string; recipient: string; token: string }[];
}

export function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

/** A transfer as the gateway leaves it: records, blobs, then the state asked for. */
export async function addTransfer(
  env: Env,
  opts: {
    files: FixtureFile[];
    state?: TransferState;
    sender?: string;
    subject?: string | null;
    createdAt?: number;
    expiresAt?: number;
    /** The download limit a retention rule set on this transfer. */
    maxDownloads?: number | null;
    /** hashTransferPassword() of a password: the transfer is password-protected (docs/passwords.md). */
    passwordHash?: string | null;
    recipients?: string[];
    messageId?: string | null;
    /** As the gateway stores it with offload.linkPerRecipient: a link and token per recipient. */
    linkPerRecipient?: boolean;
  },
): Promise<Fixture> {
  const token = newToken();
  const transferId = newId();
  const createdAt = opts.createdAt ?? Date.now() - 60_000;
  const recipients = opts.recipients ?? ['bob@example.net'];
  const links = opts.linkPerRecipient ? recipients.map((recipient) => ({ id: newLinkId(), recipient, token: newToken() })) : [];
  await createTransfer(env.db, {
    id: transferId,
    tokenHash: hashToken(token),
    queueId: newQueueId(),
    sender: opts.sender ?? 'alice@example.org',
    recipients,
    subject: opts.subject === undefined ? 'Quarterly figures' : opts.subject,
    messageId: opts.messageId === undefined ? `<${newId()}@example.org>` : opts.messageId,
    createdAt,
    expiresAt: opts.expiresAt ?? Date.now() + 7 * 86_400_000,
    maxDownloads: opts.maxDownloads ?? null,
    passwordHash: opts.passwordHash ?? null,
    ...(opts.linkPerRecipient ? { links: links.map((l) => ({ id: l.id, recipient: l.recipient, tokenHash: hashToken(l.token) })) } : {}),
  });
  const files: Fixture['files'] = [];
  for (const [i, f] of opts.files.entries()) {
    const idx = i + 1;
    const blobKey = newBlobKey(transferId, idx);
    await env.blobs.put(blobKey, Readable.from([f.data]));
    const hash = sha256(f.data);
    await addFile(env.db, {
      transferId,
      idx,
      name: f.name,
      contentType: f.contentType ?? 'application/octet-stream',
      size: f.data.length,
      sha256: hash,
      blobKey,
    });
    files.push({ idx, name: f.name, data: f.data, sha256: hash, blobKey });
  }
  const state = opts.state ?? 'live';
  if (state !== 'pending') await markLive(env.db, transferId);
  if (state !== 'pending' && state !== 'live') await setState(env.db, transferId, state);
  return { token, transferId, files, links };
}

/** Wraps a blob store and keeps every openRead call and the stream it returned. */
export class SpyBlobStore implements BlobStore {
  readonly kind: string;
  readonly reads: { key: string; range?: ByteRange; signal?: AbortSignal; stream?: Readable }[] = [];
  failWith?: Error;
  constructor(private readonly inner: BlobStore) {
    this.kind = inner.kind;
  }
  put(...args: Parameters<BlobStore['put']>) {
    return this.inner.put(...args);
  }
  async openRead(key: string, opts: { range?: ByteRange; signal?: AbortSignal } = {}): Promise<Readable> {
    const entry: SpyBlobStore['reads'][number] = { key, range: opts.range, signal: opts.signal };
    this.reads.push(entry);
    if (this.failWith) throw this.failWith;
    entry.stream = await this.inner.openRead(key, opts);
    return entry.stream;
  }
  delete(key: string) {
    return this.inner.delete(key);
  }
  exists(key: string) {
    return this.inner.exists(key);
  }
  list(prefix?: string) {
    return this.inner.list(prefix);
  }
  check() {
    return this.inner.check();
  }
  close() {
    return this.inner.close();
  }
}

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export function httpRequest(url: string, opts: { method?: string; headers?: Record<string, string> } = {}): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

export async function waitFor<T>(probe: () => Promise<T | undefined> | T | undefined, what: string, timeoutMs = 5000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function downloads(db: Db, transferId: string) {
  return db.selectFrom('downloads').selectAll().where('transfer_id', '=', transferId).orderBy('id').execute();
}

export function pathOf(url: string): string {
  return new URL(url).pathname;
}
