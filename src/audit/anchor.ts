import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { closeSync, existsSync, fstatSync, fsyncSync, ftruncateSync, openSync, readFileSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { sha256 } from '../util/ids.js';
import { appendWhole, storageError } from '../util/storage.js';

/** Where the anchor keeps its key and its lines: files beside the store, never inside it. */
export interface AnchorFiles {
  /** 32 random bytes (hex), made at first start, mode 0600. */
  keyFile: string;
  /** One line per audit record, appended, each with an HMAC of (sequence number, hash) under the key. */
  anchorFile: string;
}

/** One record as the anchor saw it when it was written. */
export interface AnchorLine {
  line: number;
  seq: number;
  hash: string;
  mac: string;
}

/** The head of the chain as printed on exports and reports: its number and the start of its keyed digest. */
export interface PrintedAnchor {
  seq: number;
  digest: string;
  /** `seq:digest`, the form printed and accepted back by `GET /api/audit?anchor=`. */
  text: string;
}

export interface AnchorRead {
  lines: AnchorLine[];
  /** The first line that is malformed or not signed with this key (a forged or edited anchor). */
  bad?: { line: number; problem: string };
}

const DIGEST_CHARS = 16;
const FORMAT = 'v1';

/**
 * The audit chain's witness outside the database. The store's own hash
 * chain proves only that its records agree with each other: anyone who can
 * write the SQLite file can cut its tail, put back an older copy, or drop
 * the triggers and recompute every hash. The anchor file keeps, for every
 * record, its number and hash under an HMAC whose key is not in the store,
 * so a store that disagrees with it, or ends before it, is found out.
 */
export class AuditAnchor {
  private tailChecked = false;
  /** The lines already checked, with the digest of the bytes they came from: unchanged bytes are not checked again. */
  private verified?: { length: number; digest: string; lines: AnchorLine[] };

  private constructor(
    readonly files: AnchorFiles,
    private readonly key: Buffer,
  ) {}

  /** The key file's fingerprint, kept in the store: a store anchored with another key (or none) is noticed. */
  get fingerprint(): string {
    return sha256(this.key).slice(0, 16);
  }

  /** Opens the key, or makes it when there is none (first start); `undefined` when it is missing and may not be made. */
  static open(files: AnchorFiles, mayCreate: boolean): AuditAnchor | undefined {
    if (existsSync(files.keyFile)) return new AuditAnchor(files, readKey(files.keyFile));
    if (!mayCreate) return undefined;
    const key = randomBytes(32);
    let fd: number;
    try {
      // wx: two processes starting at once cannot each make their own key; the second reads the first's.
      fd = openSync(files.keyFile, 'wx', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return new AuditAnchor(files, readKey(files.keyFile));
      throw storageError(err, dirname(files.keyFile));
    }
    try {
      appendWhole(fd, Buffer.from(`${key.toString('hex')}\n`), 0, dirname(files.keyFile));
      fsyncSync(fd);
    } catch (err) {
      // A key cut short by a full disk would read as a key to restore from a backup at every start: none is made.
      closeSync(fd);
      rmSync(files.keyFile, { force: true });
      throw storageError(err, dirname(files.keyFile));
    }
    closeSync(fd);
    return new AuditAnchor(files, key);
  }

  mac(seq: number, hash: string): string {
    return createHmac('sha256', this.key).update(`examlab audit anchor\n${seq}\n${hash}`).digest('hex');
  }

  printed(seq: number, hash: string): PrintedAnchor {
    const digest = this.mac(seq, hash).slice(0, DIGEST_CHARS);
    return { seq, digest, text: `${seq}:${digest}` };
  }

  /**
   * Appends records to the anchor file and syncs it: once this returns, they
   * are anchored. All the lines or none: what a full disk let through of
   * them is taken back (the error is then a StorageFullError), and they are
   * anchored by a later write.
   */
  write(records: readonly { seq: number; hash: string }[]): void {
    if (records.length === 0) return;
    const text = records.map((r) => `${FORMAT} ${r.seq} ${r.hash} ${this.mac(r.seq, r.hash)}\n`).join('');
    const dir = dirname(this.files.anchorFile);
    let fd: number;
    try {
      fd = openSync(this.files.anchorFile, 'a', 0o600);
    } catch (err) {
      throw storageError(err, dir);
    }
    try {
      if (!this.tailChecked) {
        // A line cut by a crash mid-write (no newline) was never anchored: drop it rather than glue the next line to it.
        const before = existsSync(this.files.anchorFile) ? readFileSync(this.files.anchorFile, 'utf8') : '';
        if (before.length > 0 && !before.endsWith('\n')) ftruncateSync(fd, Buffer.byteLength(before.slice(0, before.lastIndexOf('\n') + 1)));
        this.tailChecked = true;
      }
      const size = fstatSync(fd).size;
      appendWhole(fd, Buffer.from(text), size, dir);
      try {
        fsyncSync(fd);
      } catch (err) {
        try {
          ftruncateSync(fd, size);
        } catch {
          // Kept: the same lines written again later read as one record anchored twice, which the check allows.
        }
        throw storageError(err, dir);
      }
    } finally {
      closeSync(fd);
    }
  }

  /** Every line of the anchor file, checked against the key, up to the first bad one. */
  read(): AnchorRead {
    if (!existsSync(this.files.anchorFile)) return { lines: [] };
    let bytes: Buffer;
    try {
      bytes = readFileSync(this.files.anchorFile);
    } catch (err) {
      return { lines: [], bad: { line: 0, problem: `the anchor file ${this.files.anchorFile} cannot be read: ${(err as Error).message}` } };
    }
    // Bytes already checked, unchanged (same digest): their lines are kept; only what was appended since is checked.
    const known = this.verified && bytes.length >= this.verified.length && sha256(bytes.subarray(0, this.verified.length)) === this.verified.digest ? this.verified : undefined;
    const lines: AnchorLine[] = known ? [...known.lines] : [];
    const text = bytes.subarray(known?.length ?? 0).toString('utf8');
    const raw = text.split('\n');
    // A line cut by a crash mid-write is the last one and has no newline: it was never anchored.
    if (raw[raw.length - 1] !== '') raw[raw.length - 1] = '';
    for (let i = 0; i < raw.length - 1; i++) {
      const line = lines.length + 1;
      const m = /^v1 ([1-9][0-9]{0,15}) ([0-9a-f]{64}) ([0-9a-f]{64})$/.exec(raw[i] as string);
      if (!m) return { lines, bad: { line, problem: `line ${line} of the anchor file ${this.files.anchorFile} is malformed` } };
      const [, seqText, hash, mac] = m as unknown as [string, string, string, string];
      const seq = Number(seqText);
      if (!timingSafeEqual(Buffer.from(mac, 'hex'), Buffer.from(this.mac(seq, hash), 'hex'))) {
        return { lines, bad: { line, problem: `line ${line} of the anchor file (record ${seq}) is not signed with this daemon's key: the anchor was edited` } };
      }
      lines.push({ line, seq, hash, mac });
    }
    const complete = bytes.lastIndexOf(0x0a) + 1;
    this.verified = { length: complete, digest: sha256(bytes.subarray(0, complete)), lines };
    return { lines };
  }
}

function readKey(file: string): Buffer {
  const text = readFileSync(file, 'utf8').trim();
  if (!/^[0-9a-f]{64}$/.test(text)) throw new Error(`the audit key ${file} is not 64 hexadecimal characters: restore it from a backup`);
  return Buffer.from(text, 'hex');
}
