import net from 'node:net';

// CIDR matching through node's own net.BlockList, so IPv4, IPv6 and IPv4-mapped IPv6
// ("::ffff:127.0.0.1", which is what a dual-stack listener reports) are all handled by Node.

export function parseCidr(entry: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | undefined {
  const [addr, bits] = entry.trim().split('/');
  if (!addr) return undefined;
  const family = net.isIPv4(addr) ? 'ipv4' : net.isIPv6(addr) ? 'ipv6' : undefined;
  if (!family) return undefined;
  const max = family === 'ipv4' ? 32 : 128;
  const prefix = bits === undefined ? max : Number(bits);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max || (bits !== undefined && !/^\d+$/.test(bits))) return undefined;
  return { address: addr, prefix, family };
}

/**
 * Address ranges split by family. Node's BlockList matches an IPv4 address against IPv6 subnets
 * too (through its mapped form), so `::/0` or `::/64` in smtp.trustedNetworks would trust every
 * IPv4 client: an open relay by a typo. IPv4 clients are checked against IPv4 ranges only, IPv6
 * clients against IPv6 ranges only; an IPv4-mapped IPv6 range (::ffff:10.0.0.0/104) counts as
 * the IPv4 range it maps.
 */
export interface AddressRanges {
  v4: net.BlockList;
  v6: net.BlockList;
}

const MAPPED_RANGE = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i;

export function buildBlockList(entries: readonly string[]): AddressRanges {
  const ranges = { v4: new net.BlockList(), v6: new net.BlockList() };
  for (const e of entries) {
    const c = parseCidr(e);
    if (!c) throw new Error(`not an address or CIDR range: ${e}`);
    const mapped = c.family === 'ipv6' && c.prefix >= 96 ? MAPPED_RANGE.exec(c.address) : null;
    if (mapped) ranges.v4.addSubnet(mapped[1]!, c.prefix - 96, 'ipv4');
    else if (c.family === 'ipv4') ranges.v4.addSubnet(c.address, c.prefix, 'ipv4');
    else ranges.v6.addSubnet(c.address, c.prefix, 'ipv6');
  }
  return ranges;
}

export function addressInList(ranges: AddressRanges, address: string | undefined): boolean {
  if (!address) return false;
  const mapped = MAPPED_RANGE.exec(address);
  const plain = mapped ? mapped[1]! : address;
  if (net.isIPv4(plain)) return ranges.v4.check(plain, 'ipv4');
  if (net.isIPv6(plain)) return ranges.v6.check(plain, 'ipv6');
  return false;
}

/**
 * The group a client address counts in for per-address limits (SMTP connections and AUTH
 * failures, web rate limits, admin login failures): an IPv4 address itself (also when written
 * IPv4-mapped, "::ffff:192.0.2.1"), an IPv6 address its /64, since one host usually has a whole
 * /64 to pick addresses from. A zone index ("%eth0") is dropped.
 */
export function addressGroup(address: string): string {
  const a = address.split('%')[0]!;
  const mapped = MAPPED_RANGE.exec(a);
  if (mapped) return mapped[1]!;
  if (!net.isIPv6(a)) return a;
  const [head = '', tail = ''] = a.split('::');
  const h = head ? head.split(':') : [];
  const t = a.includes('::') && tail ? tail.split(':') : [];
  const groups = a.includes('::') ? [...h, ...Array<string>(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t] : h;
  return `${groups.slice(0, 4).map((g) => (parseInt(g, 16) || 0).toString(16)).join(':')}::/64`;
}
