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

export function buildBlockList(entries: readonly string[]): net.BlockList {
  const list = new net.BlockList();
  for (const e of entries) {
    const c = parseCidr(e);
    if (!c) throw new Error(`not an address or CIDR range: ${e}`);
    list.addSubnet(c.address, c.prefix, c.family);
  }
  return list;
}

export function addressInList(list: net.BlockList, address: string | undefined): boolean {
  if (!address) return false;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  const plain = mapped ? mapped[1]! : address;
  const family = net.isIPv4(plain) ? 'ipv4' : net.isIPv6(plain) ? 'ipv6' : undefined;
  if (!family) return false;
  return list.check(plain, family);
}
