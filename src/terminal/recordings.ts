import { EventEmitter } from 'node:events';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { NotFoundError } from '../util/errors.js';
import { newId } from '../util/ids.js';

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
}

/** A recording id: its start (sortable) and a random part. */
export const RECORDING_ID = /^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$/;

/**
 * One session being recorded as asciicast v2: output (`o`), input (`i`) and
 * resize (`r`) events, each written to the file at once (synchronously, so
 * the file is always whole for a watcher that reads it and then listens).
 * Emits `event` (a CastEvent) and `end`.
 */
export class Recording extends EventEmitter {
  private readonly fd: number;
  private readonly started = Date.now();
  private readonly out = new StringDecoder('utf8');
  private readonly typed = new StringDecoder('utf8');
  private ended = false;

  constructor(
    readonly file: string,
    private readonly metaFile: string,
    readonly meta: Meta,
    readonly header: CastHeader,
  ) {
    super();
    this.setMaxListeners(50);
    this.fd = openSync(file, 'a', 0o600);
    writeSync(this.fd, `${JSON.stringify(header)}\n`);
    this.saveMeta();
  }

  get id(): string {
    return this.meta.id;
  }

  get live(): boolean {
    return !this.ended;
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
    closeSync(this.fd);
    this.meta.endedAt = new Date().toISOString();
    this.saveMeta();
    this.emit('end');
  }

  private event(kind: CastEvent[1], data: string): void {
    if (this.ended || (!data && kind !== 'r')) return;
    const event: CastEvent = [Math.round(Date.now() - this.started) / 1000, kind, data];
    writeSync(this.fd, `${JSON.stringify(event)}\n`);
    this.emit('event', event);
  }

  private saveMeta(): void {
    writeFileSync(this.metaFile, `${JSON.stringify(this.meta)}\n`, { mode: 0o600 });
  }
}

/**
 * Every candidate session's recording, kept with the exam in the data
 * directory: `<dir>/<exam>/<candidate>/<id>.cast` (asciicast v2) beside
 * `<id>.json` (machine, how, when).
 */
export class Recordings {
  private readonly liveOnes = new Map<string, Recording>();

  constructor(private readonly dir: string) {}

  start(what: { examId: string; candidateId: string; machine: string; via: SessionVia; cols: number; rows: number; term: string }): Recording {
    const folder = join(this.dir, what.examId, what.candidateId);
    mkdirSync(folder, { recursive: true, mode: 0o700 });
    const now = new Date();
    const id = `${now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${newId(4)}`;
    const recording = new Recording(
      join(folder, `${id}.cast`),
      join(folder, `${id}.json`),
      { id, examId: what.examId, candidateId: what.candidateId, machine: what.machine, via: what.via, startedAt: now.toISOString() },
      { version: 2, width: what.cols, height: what.rows, timestamp: Math.floor(now.getTime() / 1000), title: `${what.candidateId}@${what.machine} (${what.via})`, env: { TERM: what.term } },
    );
    const key = `${what.examId}/${what.candidateId}/${id}`;
    this.liveOnes.set(key, recording);
    recording.once('end', () => this.liveOnes.delete(key));
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

  /** Closes what is still open (daemon stop). */
  endAll(): void {
    for (const recording of [...this.liveOnes.values()]) recording.end();
  }
}
