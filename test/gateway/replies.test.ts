import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { CrlfNormalizer } from '../../gateway/line-ends.js';
import { carriesEnhancedCode, nextHopReply, replies } from '../../gateway/replies.js';

describe('reply catalogue', () => {
  const samples = [
    replies.declaredTooBig(600e6, 500e6),
    replies.tooBig(600e6, 500e6),
    replies.hardLimit(500e6),
    replies.relayDenied('x@example.org'),
    replies.storageUnavailable(),
    replies.localError(),
    replies.nextHopUnavailable('connection refused'),
    replies.malformed('broken'),
    replies.tooManyRecipients(100),
    replies.accepted('ABC', 2),
    replies.shuttingDown(),
  ];
  it.each(samples.map((r) => [`${r.code} ${r.enhanced}`, r]))('%s: the enhanced code has the reply\'s class and the text is one sentence-like line', (_n, r) => {
    expect(String(r.code)[0]).toBe(r.enhanced[0]);
    expect(carriesEnhancedCode(r.code, `${r.enhanced} ${r.text}`)).toBe(true);
    expect(r.text).not.toMatch(/[\r\n]/);
    expect(r.text.length).toBeGreaterThan(10);
  });

  it('uses the RFC 3463 codes DESIGN.md names', () => {
    expect([replies.tooBig(1, 1).code, replies.tooBig(1, 1).enhanced]).toEqual([552, '5.3.4']);
    expect([replies.storageUnavailable().code, replies.storageUnavailable().enhanced]).toEqual([452, '4.3.1']);
    expect([replies.relayDenied('a').code, replies.relayDenied('a').enhanced]).toEqual([550, '5.7.1']);
    expect([replies.localError().code, replies.localError().enhanced]).toEqual([451, '4.3.0']);
  });

  it('passes a next hop\'s reply back with its own enhanced code, or a class default', () => {
    expect(nextHopReply(550, '550 5.1.1 <x@y>: Recipient address rejected')).toEqual({ code: 550, enhanced: '5.1.1', text: 'Next hop said: <x@y>: Recipient address rejected' });
    expect(nextHopReply(554, '554 Transaction failed')).toEqual({ code: 554, enhanced: '5.0.0', text: 'Next hop said: Transaction failed' });
    // A code of the wrong class is not taken as the enhanced code.
    expect(nextHopReply(550, '550 4.2.2 odd').enhanced).toBe('5.0.0');
  });
});

describe('CRLF normaliser', () => {
  async function run(chunks: string[]): Promise<string> {
    const out: Buffer[] = [];
    const n = Readable.from(chunks.map((c) => Buffer.from(c, 'latin1'))).pipe(new CrlfNormalizer());
    for await (const c of n) out.push(c as Buffer);
    return Buffer.concat(out).toString('latin1');
  }
  it('turns bare LF into CRLF and leaves CRLF alone, across chunk edges', async () => {
    expect(await run(['a\nb\r\nc\n'])).toBe('a\r\nb\r\nc\r\n');
    expect(await run(['a\r', '\nb', '\n', '\n.\n'])).toBe('a\r\nb\r\n\r\n.\r\n');
    expect(await run(['\n'])).toBe('\r\n');
  });
});
