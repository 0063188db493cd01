import { Splitter, type MimeNode } from '@zone-eu/mailsplit';
import type { Config } from '../config/schema.js';
import { queueObjects } from './stage-queues.js';

// Bounds on the MIME structure of one message (mime.maxDepth, mime.maxParts), enforced inside
// mailsplit's Splitter at the moment it opens a part, before it has done any work for the part
// past the limit.
//
// Why here and not with the Splitter's own maxChildNodes: that limit counts parts only. The
// Splitter checks every line against the boundary of every open ancestor and keeps every
// ancestor node (headers parsed, a libmime instance each), so a message nested 10,000 levels
// deep costs time and memory quadratic in its depth long before the part count is reached (7 MB
// took 435 MB of heap and 5 s of CPU, issue 15). Cutting depth keeps both linear.
//
// A separate pre-scanner in front of the Splitter was not written: it would have to parse MIME
// exactly as the Splitter does (boundaries of every ancestor, embedded messages, lone CR in
// delimiters) to count the same depth, and any difference would be a way around the limit.

export interface MimeLimits {
  /** Deepest nesting of parts; the top-level message is depth 0. */
  maxDepth: number;
  /** Most parts (every node the Splitter opens, containers included). */
  maxParts: number;
  /** Largest header bytes of one part plus all the parts enclosing it (they are all held while it is open). */
  maxHeadChain: number;
}

/** The error a message past a limit fails with; handled as malformed MIME (docs/message-path.md). */
export class MimeLimitError extends Error {
  readonly code = 'EMIMELIMIT';
  constructor(
    /** What was exceeded, in words for the SMTP reply. */
    readonly reason: string,
  ) {
    super(`MIME structure over the limit: ${reason}`);
    this.name = 'MimeLimitError';
  }
}

/**
 * The header blocks of a part and all its ancestors are held while it is open; each may reach
 * the Splitter's maxHeadSize (2 MiB), so without a bound on their sum 50 levels could hold
 * 100 MiB. Real mail has a few hundred bytes of header per container.
 */
const MAX_HEAD_CHAIN = 4 * 1024 * 1024;

export function mimeLimits(config: Pick<Config, 'mime'>): MimeLimits {
  return { maxDepth: config.mime.maxDepth, maxParts: config.mime.maxParts, maxHeadChain: MAX_HEAD_CHAIN };
}

type LineCallback = (err?: Error | null, data?: unknown, flush?: boolean) => void;

interface SplitterInternals {
  node: MimeNode;
  nodeCounter: number;
  newNode(parent?: MimeNode | false): void;
  processLine(line: Buffer | false, final: boolean, next: LineCallback): void;
}

type Tracked = MimeNode & { _ferryDepth?: number; _ferryHeadChain?: number; headerCost?: () => number };

/**
 * mailsplit's Splitter that stops at the structure limits. It overrides two internal methods
 * (newNode, processLine) of @zone-eu/mailsplit 5.4: test/gateway/mime-limits.test.ts fails if
 * a new version renames them (the nested message would then pass).
 */
export class LimitedSplitter extends Splitter {
  private limitError: MimeLimitError | undefined;
  private limits: MimeLimits | undefined;

  constructor(options: ConstructorParameters<typeof Splitter>[0], limits: MimeLimits) {
    // The Splitter's own part limit stays as a backstop one past ours, so ours reports first.
    super({ ...options, maxChildNodes: limits.maxParts + 1 });
    this.limits = limits;
    // The bodies it hands on wait here behind a slower stage (gateway/stage-queues.ts).
    queueObjects(this, 'readable');
  }

  /** Set once a limit was passed; the Splitter then fails on its next line. */
  get exceeded(): MimeLimitError | undefined {
    return this.limitError;
  }

  static {
    const proto = LimitedSplitter.prototype as unknown as SplitterInternals & { limitError?: MimeLimitError; limits?: MimeLimits };
    const base = Splitter.prototype as unknown as SplitterInternals;
    proto.newNode = function (this: SplitterInternals & { limitError?: MimeLimitError; limits?: MimeLimits }, parent?: MimeNode | false) {
      base.newNode.call(this, parent);
      const p = (parent || undefined) as Tracked | undefined;
      const node = this.node as Tracked;
      node._ferryDepth = p ? (p._ferryDepth ?? 0) + 1 : 0;
      // The enclosing parts' header blocks are complete when a child opens.
      node._ferryHeadChain = p ? (p._ferryHeadChain ?? 0) + (p.headerCost?.() ?? 0) : 0;
      // Called once from the Splitter's constructor, before `limits` is set: the root is depth 0.
      const limits = this.limits;
      if (!limits || this.limitError) return;
      if (node._ferryDepth > limits.maxDepth) this.limitError = new MimeLimitError(`parts are nested more than ${limits.maxDepth} levels deep`);
      else if (this.nodeCounter > limits.maxParts) this.limitError = new MimeLimitError(`it has more than ${limits.maxParts} parts`);
      else if (node._ferryHeadChain > limits.maxHeadChain) this.limitError = new MimeLimitError(`the headers of nested parts add up to more than ${limits.maxHeadChain} bytes`);
    };
    proto.processLine = function (this: SplitterInternals & { limitError?: MimeLimitError }, line, final, next) {
      if (this.limitError) return next(this.limitError);
      return base.processLine.call(this, line, final, next);
    };
  }
}
