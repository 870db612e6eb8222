import { isMap, isPair, isScalar, isSeq, LineCounter, type Document, type Node } from 'yaml';
import type { ErrorDetail } from '../util/errors.js';

export type Path = readonly (string | number)[];

/** `checks[3].machine` */
export function formatPath(path: Path): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out ? `.${seg}` : seg;
  return out || '(top level)';
}

/**
 * A parsed YAML file that can say where a path of its data is written, so
 * every problem is reported as `FILE:LINE:COL path: message`.
 */
export class SourceFile {
  private readonly lines = new LineCounter();
  readonly doc: Document;

  constructor(
    readonly fileName: string,
    readonly text: string,
    parse: (text: string, lineCounter: LineCounter) => Document,
  ) {
    this.doc = parse(text, this.lines);
  }

  /** The node at `path`, or the deepest ancestor that exists. */
  nodeAt(path: Path, options: { key?: string } = {}): { node: Node | undefined; exact: boolean } {
    let node: unknown = this.doc.contents;
    let last: Node | undefined = node as Node | undefined;
    for (const seg of path) {
      const next = child(node, seg);
      if (next === undefined) return { node: last, exact: false };
      node = next;
      last = next as Node;
    }
    if (options.key !== undefined && isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === options.key);
      if (pair && isScalar(pair.key)) return { node: pair.key as Node, exact: true };
    }
    return { node: last, exact: true };
  }

  /** `file:line:col` of an offset in the text. */
  position(offset: number): string {
    const { line, col } = this.lines.linePos(offset);
    return `${this.fileName}:${line}:${col}`;
  }

  /** A problem located at `path` (or at one of its keys). */
  detail(path: Path, message: string, options: { key?: string; offset?: number } = {}): ErrorDetail {
    const { node } = this.nodeAt(path, options);
    const start = (node?.range?.[0] ?? 0) + (options.offset ?? 0);
    const shownPath = options.key !== undefined ? [...path, options.key] : path;
    return { where: `${this.position(start)} ${formatPath(shownPath)}`, message };
  }
}

function child(node: unknown, seg: string | number): unknown {
  if (isMap(node)) {
    const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === seg);
    return pair?.value ?? undefined;
  }
  if (isSeq(node) && typeof seg === 'number') return node.items[seg];
  return undefined;
}

/** Reads a value from plain data by path, or undefined. */
export function valueAt(data: unknown, path: Path): unknown {
  let value = data;
  for (const seg of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string | number, unknown>)[seg];
  }
  return value;
}

/** Orders details by file position (line, then column). */
export function byPosition(a: ErrorDetail, b: ErrorDetail): number {
  const pos = (d: ErrorDetail) => {
    const m = /:(\d+):(\d+) /.exec(d.where ?? '');
    return m ? Number(m[1]) * 100_000 + Number(m[2]) : 0;
  };
  return pos(a) - pos(b);
}
