import { execFile, execFileSync } from 'node:child_process';
import { parse } from './mail.js';

/** Python 3 reads the DSNs as a second, independent parser; tests that need it skip without it. */
export const hasPython = (() => {
  try {
    execFileSync('python3', ['-c', 'import email.policy'], { stdio: 'ignore' });
    return true;
  } catch {
    console.warn('DSN tests skipped: python3 (with its email package) is missing; install the Debian package python3');
    return false;
  }
})();

// Reads a DSN the way two independent MIME parsers see it: mailparser (Node) and Python's
// email package. Both must agree that it is a multipart/report of report-type delivery-status
// and name the same recipients.

export interface ParsedDsn {
  contentType: string;
  reportType: string;
  /** Per-recipient fields from message/delivery-status, as Python's email package reads them. */
  recipients: { finalRecipient: string; action: string; status: string; originalRecipient?: string; diagnostic?: string }[];
  /** Per-message fields (Reporting-MTA, Original-Envelope-Id, ...). */
  perMessage: Record<string, string>;
  /** The content types of the parts, in order. */
  parts: string[];
  /** The returned header block (text/rfc822-headers). */
  returnedHeaders: string;
  /** The text mailparser presents (human part and status). */
  mailparserText: string;
  mailparserReportType: string | undefined;
  subject: string;
}

const PY = String.raw`
import sys, json, email
from email import policy
m = email.message_from_bytes(sys.stdin.buffer.read(), policy=policy.default)
parts = [p.get_content_type() for p in m.iter_parts()]
status = [p for p in m.iter_parts() if p.get_content_type() == 'message/delivery-status'][0]
blocks = status.get_payload()
per_message = {k: str(v) for k, v in blocks[0].items()}
recips = []
for b in blocks[1:]:
    recips.append({'finalRecipient': str(b['Final-Recipient']), 'action': str(b['Action']), 'status': str(b['Status']),
                   **({'originalRecipient': str(b['Original-Recipient'])} if b['Original-Recipient'] else {}),
                   **({'diagnostic': str(b['Diagnostic-Code'])} if b['Diagnostic-Code'] else {})})
hdrs = [p for p in m.iter_parts() if p.get_content_type() == 'text/rfc822-headers']
print(json.dumps({'contentType': m.get_content_type(), 'reportType': m.get_param('report-type'), 'parts': parts,
                  'perMessage': per_message, 'recipients': recips, 'subject': str(m['Subject']),
                  'returnedHeaders': hdrs[0].get_payload(decode=True).decode('latin-1') if hdrs else ''}))
`;

export async function parseDsn(raw: Buffer): Promise<ParsedDsn> {
  const py = await new Promise<Omit<ParsedDsn, 'mailparserText' | 'mailparserReportType'>>((resolve, reject) => {
    const child = execFile('python3', ['-c', PY], { maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`python3 could not parse the DSN: ${stderr || err.message}`));
      else resolve(JSON.parse(stdout));
    });
    child.stdin!.end(raw);
  });
  const m = await parse(raw);
  const ct = m.headers.get('content-type') as { value: string; params: Record<string, string> };
  if (ct.value !== 'multipart/report') throw new Error(`mailparser sees ${ct.value}, not multipart/report`);
  return { ...py, mailparserText: m.text ?? '', mailparserReportType: ct.params['report-type'] };
}
