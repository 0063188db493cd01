import { execFile } from 'node:child_process';
import { parse } from './mail.js';

// Reads a mail Ferry wrote itself (receipt, download notice) the way two independent MIME
// parsers see it: Python's email package and mailparser. Tests compare the two and check what a
// person reads in either. Python's absence is reported by test/helpers/queue-dsn.ts hasPython.

export interface ParsedNotice {
  from: string;
  to: string;
  subject: string;
  autoSubmitted: string;
  messageId: string;
  contentType: string;
  /** The decoded text/plain body. */
  text: string;
  /** The decoded text/html body ('' when there is none). */
  html: string;
}

const PY = String.raw`
import sys, json, email
from email import policy
m = email.message_from_bytes(sys.stdin.buffer.read(), policy=policy.default)
t = m.get_body(preferencelist=('plain',))
h = m.get_body(preferencelist=('html',))
print(json.dumps({'from': str(m['From']), 'to': str(m['To']), 'subject': str(m['Subject']),
  'autoSubmitted': str(m['Auto-Submitted'] or ''), 'messageId': str(m['Message-ID'] or ''),
  'contentType': m.get_content_type(),
  'text': t.get_content() if t is not None else '', 'html': h.get_content() if h is not None else ''}))
`;

export function parseWithPython(raw: Buffer): Promise<ParsedNotice> {
  return new Promise((resolve, reject) => {
    const child = execFile('python3', ['-c', PY], { maxBuffer: 8 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`python3 could not parse the mail: ${stderr || err.message}`));
      else {
        // The wire has CRLF line ends and Python keeps them; a reader sees lines either way.
        const r = JSON.parse(stdout) as ParsedNotice;
        resolve({ ...r, text: r.text.replace(/\r\n/g, '\n'), html: r.html.replace(/\r\n/g, '\n') });
      }
    });
    child.stdin!.end(raw);
  });
}

export async function parseWithMailparser(raw: Buffer): Promise<ParsedNotice> {
  const m = await parse(raw);
  const ct = m.headers.get('content-type') as { value: string } | undefined;
  return {
    from: m.from?.text ?? '',
    to: Array.isArray(m.to) ? m.to.map((a) => a.text).join(', ') : (m.to?.text ?? ''),
    subject: m.subject ?? '',
    autoSubmitted: String(m.headers.get('auto-submitted') ?? ''),
    messageId: m.messageId ?? '',
    contentType: ct?.value ?? 'text/plain',
    text: (m.text ?? '').replace(/\r\n/g, '\n'),
    html: (typeof m.html === 'string' ? m.html : '').replace(/\r\n/g, '\n'),
  };
}

/** Both parsers' view; throws when they disagree on what a reader sees. */
export async function parseNotice(raw: Buffer): Promise<ParsedNotice> {
  const [py, mp] = await Promise.all([parseWithPython(raw), parseWithMailparser(raw)]);
  const norm = (s: string) => s.replace(/\r\n/g, '\n').trim();
  for (const k of ['subject', 'autoSubmitted', 'messageId', 'contentType'] as const) {
    if (py[k] !== mp[k]) throw new Error(`python and mailparser disagree on ${k}: ${JSON.stringify(py[k])} vs ${JSON.stringify(mp[k])}`);
  }
  for (const k of ['text', 'html'] as const) {
    if (norm(py[k]) !== norm(mp[k])) throw new Error(`python and mailparser disagree on the ${k} body:\n${py[k]}\n---\n${mp[k]}`);
  }
  return py;
}
