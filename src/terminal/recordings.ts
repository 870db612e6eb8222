import { EventEmitter } from 'node:events';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import type { Logger } from 'pino';
import { errorMessage, NotFoundError } from '../util/errors.js';
import { newId } from '../util/ids.js';
import { appendWhole, storageError, writeFileWhole } from '../util/storage.js';
import { formatBytes } from '../util/units.js';

/** How the candidate came in. */
export type SessionVia = 'ssh' | 'browser';

/** One asciicast v2 event: seconds since the start, its kind (output, input, resize), its data. */
export type CastEvent = [number, 'o' | 'i' | 'r', string];

/** The asciicast v2 header line. */
export interface CastHeader {
  version: 2;
  width: number;
  height: number;
  timestamp: number;
  title: string;
  env: { TERM: string; SHELL?: string };
}

export interface RecordingInfo {
  id: string;
  machine: string;
  via: SessionVia;
  startedAt: string;
  endedAt?: string;
  live: boolean;
  bytes: number;
}

interface Meta extends Omit<RecordingInfo, 'live' | 'bytes'> {
  examId: string;
  candidateId: string;
  /** Events the disk refused for longer than they could be held: none in a whole recording. */
  unrecorded?: { events: number; bytes: number };
}

/** A recording id: its start (sortable) and a random part. */
export const RECORDING_ID = /^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$/;

/** Bytes of events a recording holds in memory while the disk refuses them; past this, events are counted, not kept. */
export const RECORDING_HOLD_BYTES = 8 * 1024 ** 2;
/** While the disk refuses a recording's writes, it is tried again this often (not at every keystroke). */
const RETRY_MS = 2000;

/** Writes whole lines at the end of an open file of `size` bytes (a seam for tests). */
export type LineWriter = (fd: number, data: Buffer, size: number, dir: string) => void;

/**
 * One session being recorded as asciicast v2: output (`o`), input (`i`) and
 * resize (`r`) events, each written to the file at once (synchronously, so
 * the file is always whole for a watcher that reads it and then listens).
 * Emits `event` (a CastEvent) and `end`.
 *
 * The session is the candidate's, not the disk's: when the data
 * directory's filesystem refuses a write (full), the events are held in
 * memory, in order, with their times, and written as soon as it takes them
 * again (tried every few seconds, and at each event); past
 * RECORDING_HOLD_BYTES they are counted in the recording's description.
 * The file only ever holds whole lines. Nothing here throws for the disk
 * once the recording has started.
 */
export class Recording extends EventEmitter {
  private readonly fd: number;
  private readonly started = Date.now();
  private readonly out = new StringDecoder('utf8');
  private readonly typed = new StringDecoder('utf8');
  private ended = false;
  /** Bytes of whole lines in the file. */
  private size = 0;
  private held: string[] = [];
  private heldBytes = 0;
  private dropped = { events: 0, bytes: 0 };
  /** When the disk last refused a write, while it does. */
  private refusedAt?: number;
  private retry?: NodeJS.Timeout;
  private metaSaved = true;
  private closed = false;

  constructor(
    readonly file: string,
    private readonly metaFile: string,
    readonly meta: Meta,
    readonly header: CastHeader,
    private readonly options: { log?: Logger; write?: LineWriter } = {},
  ) {
    super();
    this.setMaxListeners(50);
    const dir = join(file, '..');
    try {
      this.fd = openSync(file, 'a', 0o600);
    } catch (err) {
      throw storageError(err, dir);
    }
    try {
      const line = Buffer.from(`${JSON.stringify(header)}\n`);
      this.writer(this.fd, line, 0, dir);
      this.size = line.length;
      this.saveMeta();
    } catch (err) {
      // A recording that cannot even start is not made: the session is refused, and no empty file is left.
      closeSync(this.fd);
      rmSync(file, { force: true });
      rmSync(metaFile, { force: true });
      throw storageError(err, dir);
    }
  }

  get id(): string {
    return this.meta.id;
  }

  get live(): boolean {
    return !this.ended;
  }

  /** Everything is in the files (nothing held, the description saved) and the file closed. */
  get settled(): boolean {
    return this.closed;
  }

  output(data: Buffer): void {
    this.event('o', this.out.write(data));
  }

  input(data: Buffer): void {
    this.event('i', this.typed.write(data));
  }

  resize(cols: number, rows: number): void {
    this.event('r', `${cols}x${rows}`);
  }

  end(): void {
    if (this.ended) return;
    this.event('o', this.out.end());
    this.ended = true;
    this.meta.endedAt = new Date().toISOString();
    this.metaSaved = false;
    this.settle();
    this.emit('end');
  }

  /**
   * Writes what is held and, once ended, the description, then closes the
   * file; what the disk still refuses is tried again later. `last`: the
   * daemon is stopping: one more try, then what is left is said in the log.
   */
  settle(last = false): boolean {
    if (this.closed) return true;
    clearTimeout(this.retry);
    this.retry = undefined;
    const written = this.writeHeld(true) && (!this.ended || this.trySaveMeta());
    if (written && this.ended) {
      closeSync(this.fd);
      this.closed = true;
      this.emit('settled');
      return true;
    }
    if (last) {
      this.options.log?.error({ recording: this.id, file: this.file, events: this.held.length, bytes: this.heldBytes }, 'recording left incomplete: the disk refused its last events at shutdown');
      closeSync(this.fd);
      this.closed = true;
      this.emit('settled');
      return false;
    }
    if (!written) this.retry = setTimeout(() => this.settle(), RETRY_MS).unref();
    return false;
  }

  private get writer(): LineWriter {
    return this.options.write ?? appendWhole;
  }

  private event(kind: CastEvent[1], data: string): void {
    if (this.ended || (!data && kind !== 'r')) return;
    const event: CastEvent = [Math.round(Date.now() - this.started) / 1000, kind, data];
    this.hold(`${JSON.stringify(event)}\n`);
    this.writeHeld(false);
    if (this.held.length && !this.retry) this.retry = setTimeout(() => this.settle(), RETRY_MS).unref();
    this.emit('event', event);
  }

  private hold(line: string): void {
    const bytes = Buffer.byteLength(line);
    if (this.held.length && this.heldBytes + bytes > RECORDING_HOLD_BYTES) {
      this.dropped.events++;
      this.dropped.bytes += bytes;
      return;
    }
    this.held.push(line);
    this.heldBytes += bytes;
  }

  /** Writes the held lines, oldest first, in one append; false while the disk refuses them. `force`: even if it refused them a moment ago. */
  private writeHeld(force: boolean): boolean {
    if (!this.held.length) return true;
    if (!force && this.refusedAt !== undefined && Date.now() - this.refusedAt < RETRY_MS) return false;
    const data = Buffer.from(this.held.join(''));
    try {
      this.writer(this.fd, data, this.size, join(this.file, '..'));
    } catch (err) {
      if (this.refusedAt === undefined) this.options.log?.error({ recording: this.id, err: errorMessage(err) }, 'the disk refuses this recording: its events are held in memory and written once it takes them');
      this.refusedAt = Date.now();
      return false;
    }
    this.size += data.length;
    if (this.refusedAt !== undefined) this.options.log?.info({ recording: this.id, events: this.held.length, bytes: data.length }, 'recording written again: the events held while the disk refused them are in the file');
    this.refusedAt = undefined;
    this.held = [];
    this.heldBytes = 0;
    if (this.dropped.events) {
      this.meta.unrecorded = { events: (this.meta.unrecorded?.events ?? 0) + this.dropped.events, bytes: (this.meta.unrecorded?.bytes ?? 0) + this.dropped.bytes };
      this.options.log?.error({ recording: this.id, ...this.dropped }, `recording incomplete: ${this.dropped.events} events (${formatBytes(this.dropped.bytes)}) came while the disk was full, past what could be held`);
      this.dropped = { events: 0, bytes: 0 };
      this.metaSaved = false;
      this.trySaveMeta();
    }
    return true;
  }

  private trySaveMeta(): boolean {
    if (this.metaSaved) return true;
    try {
      this.saveMeta();
    } catch {
      return false;
    }
    return true;
  }

  private saveMeta(): void {
    writeFileWhole(this.metaFile, `${JSON.stringify(this.meta)}\n`);
    this.metaSaved = true;
  }
}

/**
 * Every candidate session's recording, kept with the exam in the data
 * directory: `<dir>/<exam>/<candidate>/<id>.cast` (asciicast v2) beside
 * `<id>.json` (machine, how, when).
 */
export class Recordings {
  private readonly liveOnes = new Map<string, Recording>();
  /** Ended recordings whose last events the disk still refuses. */
  private readonly settling = new Set<Recording>();

  constructor(
    private readonly dir: string,
    private readonly options: { log?: Logger; write?: LineWriter } = {},
  ) {}

  /** Starts recording a session; a StorageError when the disk cannot take even its start (the session is then refused). */
  start(what: { examId: string; candidateId: string; machine: string; via: SessionVia; cols: number; rows: number; term: string }): Recording {
    const folder = join(this.dir, what.examId, what.candidateId);
    try {
      mkdirSync(folder, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw storageError(err, this.dir);
    }
    const now = new Date();
    const id = `${now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${newId(4)}`;
    const recording = new Recording(
      join(folder, `${id}.cast`),
      join(folder, `${id}.json`),
      { id, examId: what.examId, candidateId: what.candidateId, machine: what.machine, via: what.via, startedAt: now.toISOString() },
      { version: 2, width: what.cols, height: what.rows, timestamp: Math.floor(now.getTime() / 1000), title: `${what.candidateId}@${what.machine} (${what.via})`, env: { TERM: what.term } },
      this.options,
    );
    const key = `${what.examId}/${what.candidateId}/${id}`;
    this.liveOnes.set(key, recording);
    recording.once('end', () => {
      this.liveOnes.delete(key);
      if (!recording.settled) {
        this.settling.add(recording);
        recording.once('settled', () => this.settling.delete(recording));
      }
    });
    return recording;
  }

  /** A candidate's recordings, oldest first. */
  list(examId: string, candidateId: string): RecordingInfo[] {
    const folder = join(this.dir, examId, candidateId);
    if (!existsSync(folder)) return [];
    return readdirSync(folder)
      .filter((f) => f.endsWith('.json'))
      .sort()
      .flatMap((f) => {
        try {
          const meta = JSON.parse(readFileSync(join(folder, f), 'utf8')) as Meta;
          const cast = join(folder, `${meta.id}.cast`);
          const live = this.liveOnes.has(`${examId}/${candidateId}/${meta.id}`);
          return [{ id: meta.id, machine: meta.machine, via: meta.via, startedAt: meta.startedAt, endedAt: live ? undefined : (meta.endedAt ?? undefined), live, bytes: existsSync(cast) ? statSync(cast).size : 0 }];
        } catch {
          return [];
        }
      })
      .sort((a, b) => a.startedAt.localeCompare(b.startedAt) || a.id.localeCompare(b.id));
  }

  /** The asciicast file's path; NotFoundError when there is none. */
  castFile(examId: string, candidateId: string, id: string): string {
    const file = join(this.dir, examId, candidateId, `${id}.cast`);
    if (!RECORDING_ID.test(id) || !existsSync(file)) throw new NotFoundError(`no recording ${id} of ${candidateId}`);
    return file;
  }

  /** The recording as far as it goes: its header and every event so far. */
  read(examId: string, candidateId: string, id: string): { header: CastHeader; events: CastEvent[] } {
    const lines = readFileSync(this.castFile(examId, candidateId, id), 'utf8').split('\n').filter(Boolean);
    return { header: JSON.parse(lines[0] as string) as CastHeader, events: lines.slice(1).map((l) => JSON.parse(l) as CastEvent) };
  }

  /** The recording still being written, if it is. */
  live(examId: string, candidateId: string, id: string): Recording | undefined {
    return this.liveOnes.get(`${examId}/${candidateId}/${id}`);
  }

  /** Every recording of an exam, as files for an archive: `<candidate>/<id>.cast` and `.json`. */
  files(examId: string): { name: string; path: string }[] {
    const folder = join(this.dir, examId);
    if (!existsSync(folder)) return [];
    return readdirSync(folder)
      .sort()
      .flatMap((candidate) =>
        readdirSync(join(folder, candidate))
          .filter((f) => f.endsWith('.cast') || f.endsWith('.json'))
          .sort()
          .map((f) => ({ name: `${candidate}/${f}`, path: join(folder, candidate, f) })),
      );
  }

  /** Closes what is still open (daemon stop), with a last try at what the disk refused. */
  endAll(): void {
    for (const recording of [...this.liveOnes.values()]) recording.end();
    for (const recording of [...this.settling]) recording.settle(true);
  }
}
