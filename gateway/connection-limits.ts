import { addressGroup, addressInList, type AddressRanges } from '../config/ip-ranges.js';
import { replies, type Reply } from './replies.js';

// Who may hold SMTP connection slots (issue 15: 505 connections from one untrusted address took
// every slot of smtp.maxConnections, and the organisation's own MTA got 421).
//
// - smtp.maxConnectionsPerAddress per client address (IPv6: per /64) for clients outside
//   smtp.trustedNetworks. Trusted clients are exempt: the organisation's MTA is one address
//   and opens as many connections as its own concurrency setting says.
// - smtp.reservedConnections of the smtp.maxConnections slots are only for trusted clients:
//   clients outside trustedNetworks that have not logged in are refused once they hold
//   maxConnections - reservedConnections. A client that logs in stops counting against that
//   share or its address's count, so users behind one NAT can all be logged in.
// - Such clients also get the short smtp.untrustedIdleTimeout (smtp-server.ts), so holding a
//   slot costs an attacker traffic.

export interface ConnectionLimitOptions {
  trusted: AddressRanges;
  maxConnections: number;
  maxPerAddress: number;
  reserved: number;
}

interface Slot {
  group: string;
  /** Counts against the share open to everyone (untrusted and not logged in). */
  unprivileged: boolean;
}

export class ConnectionLimits {
  private readonly slots = new Map<string, Slot>();
  private readonly perGroup = new Map<string, number>();
  private unprivileged = 0;

  constructor(private readonly opts: ConnectionLimitOptions) {}

  isTrusted(address: string): boolean {
    return addressInList(this.opts.trusted, address);
  }

  /**
   * Takes a slot for connection `id` from `address`, or returns the 421 reply it gets instead.
   * `open` is the number of connections open now, this one included.
   */
  admit(id: string, address: string, open: number): Reply | undefined {
    if (open > this.opts.maxConnections) return replies.tooManyConnections();
    if (this.isTrusted(address)) {
      this.slots.set(id, { group: '', unprivileged: false });
      return undefined;
    }
    const group = addressGroup(address);
    const mine = this.perGroup.get(group) ?? 0;
    if (mine >= this.opts.maxPerAddress) return replies.tooManyConnectionsFromAddress(this.opts.maxPerAddress);
    if (this.unprivileged >= this.opts.maxConnections - this.opts.reserved) return replies.tooManyConnections();
    this.perGroup.set(group, mine + 1);
    this.unprivileged++;
    this.slots.set(id, { group, unprivileged: true });
    return undefined;
  }

  /** The client logged in: it no longer counts against the share open to everyone. */
  promote(id: string): void {
    const s = this.slots.get(id);
    if (!s?.unprivileged) return;
    s.unprivileged = false;
    this.unprivileged--;
    // Nor against its address: many users behind one office NAT may each be logged in.
    this.leaveGroup(s);
  }

  /** The connection closed (admitted or not; refused ones hold nothing). */
  release(id: string): void {
    const s = this.slots.get(id);
    if (!s) return;
    this.slots.delete(id);
    if (s.unprivileged) this.unprivileged--;
    this.leaveGroup(s);
  }

  private leaveGroup(s: Slot): void {
    if (!s.group) return;
    const n = (this.perGroup.get(s.group) ?? 1) - 1;
    if (n > 0) this.perGroup.set(s.group, n);
    else this.perGroup.delete(s.group);
    s.group = '';
  }
}
