import { configSchema } from './schema.js';

// Which settings are durations and which are sizes, found from the schema itself (so a new key
// needs no list kept by hand): each leaf is asked to read "1h" and "5GiB". check-config uses it
// to print 30d and 500 MB instead of 2592000000 and 500000000.

export type UnitKind = 'duration' | 'durations' | 'size';

interface Node {
  _zod: { def: { type: string; shape?: Record<string, Node>; innerType?: Node } };
  safeParse(v: unknown): { success: boolean; data?: unknown };
}

let cache: Map<string, UnitKind> | undefined;

/** "queue.maxAge" -> "duration", "smtp.maxMessageSize" -> "size", ... */
export function unitKinds(): Map<string, UnitKind> {
  if (cache) return cache;
  const out = new Map<string, UnitKind>();
  const walk = (node: Node, path: string[]) => {
    let n = node;
    while (['default', 'prefault', 'optional'].includes(n._zod.def.type) && n._zod.def.innerType) n = n._zod.def.innerType;
    if (n._zod.def.type === 'object' && n._zod.def.shape) {
      for (const [k, v] of Object.entries(n._zod.def.shape)) walk(v, [...path, k]);
      return;
    }
    const key = path.join('.');
    const hour = n.safeParse('1h');
    if (hour.success && hour.data === 3_600_000) return void out.set(key, 'duration');
    const list = n.safeParse(['1h']);
    if (list.success && Array.isArray(list.data) && list.data[0] === 3_600_000) return void out.set(key, 'durations');
    const size = n.safeParse('5GiB');
    if (size.success && size.data === 5 * 1024 ** 3) out.set(key, 'size');
  };
  walk(configSchema as unknown as Node, []);
  cache = out;
  return out;
}
