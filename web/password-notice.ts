import { formatUtc } from '../config/units.js';
import { displayName, queueSystemMail, type SystemMailContext, type Transfer } from '../storage/index.js';

// The mail that tells a sender that wrong passwords locked their transfer (docs/passwords.md).
// Plain words, in English like Ferry's other system mail; never the password (Ferry does not
// have it: only its hash is stored), never a link that opens the files.

export interface LockNotice {
  /** The client address group that was locked, or undefined when everyone was. */
  group?: string;
  lockedUntil: number;
  maxFailures: number;
}

export function lockNoticeText(transfer: Transfer, n: LockNotice): { subject: string; text: string } {
  // The subject is the sender's own words, decoded: one clean line, so no line of its own can
  // pass for one of Ferry's (a forged "Password:" or link line).
  const subject = transfer.subject ? displayName(transfer.subject, '') : '';
  const about = subject ? `"${subject}"` : `the files you sent on ${formatUtc(transfer.createdAt)}`;
  const who = n.group
    ? `Someone on the network ${n.group} entered a wrong password ${n.maxFailures} times for ${about}.`
    : `Wrong passwords were entered for ${about} from many networks, too many times in all.`;
  const lock = n.group
    ? `Until ${formatUtc(n.lockedUntil)} nobody on that network can open the files, not even with the right password.`
    : `Until ${formatUtc(n.lockedUntil)} nobody can open the files, not even with the right password. Recipients who opened them before keep access in the browser they used.`;
  const text = [
    who,
    '',
    lock,
    '',
    `Sent: ${formatUtc(transfer.createdAt)}`,
    `To: ${transfer.recipients.join(', ')}`,
    `Files: ${transfer.fileCount}`,
    `Available until: ${formatUtc(transfer.expiresAt)}`,
    '',
    'If a recipient mistyped the password, send it to them again (it is in your receipt from Ferry) and ask them to try after the time above.',
    'If nobody else should have the link, withdraw the files on the management page linked in that receipt.',
    '',
    'This mail does not contain the password.',
  ].join('\n');
  return { subject: `Locked after wrong passwords: ${subject || 'your files'}`, text };
}

/** Queues the notice; undefined when the transfer has no sender to tell (a bounce's null sender). */
export async function queueLockNotice(ctx: SystemMailContext, from: string, transfer: Transfer, n: LockNotice, now: number): Promise<string | undefined> {
  if (!transfer.sender) return undefined;
  const { subject, text } = lockNoticeText(transfer, n);
  return queueSystemMail(ctx, { to: transfer.sender, from, subject, text }, now);
}
