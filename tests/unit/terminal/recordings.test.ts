import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SessionRegistry } from '../../../src/access/index.js';
import { Recordings, type CastEvent } from '../../../src/terminal/index.js';

describe('recordings: asciicast v2 per session, kept with the exam', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'examlab-rec-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('header, output, input and resize events; UTF-8 split across chunks stays whole', () => {
    const recordings = new Recordings(dir);
    const rec = recordings.start({ examId: 'e1', candidateId: 'alice', machine: 'pc', via: 'browser', cols: 100, rows: 30, term: 'xterm-256color' });
    const live: CastEvent[] = [];
    rec.on('event', (e: CastEvent) => live.push(e));
    const euro = Buffer.from('€', 'utf8');
    rec.input(Buffer.from('echo é'));
    rec.output(Buffer.concat([Buffer.from('caf'), euro.subarray(0, 1)]));
    rec.output(euro.subarray(1));
    rec.resize(120, 40);
    expect(recordings.list('e1', 'alice')).toMatchObject([{ id: rec.id, machine: 'pc', via: 'browser', live: true }]);
    rec.end();
    const { header, events } = recordings.read('e1', 'alice', rec.id);
    expect(header).toMatchObject({ version: 2, width: 100, height: 30, title: 'alice@pc (browser)', env: { TERM: 'xterm-256color' } });
    expect(events.map((e) => [e[1], e[2]])).toEqual([
      ['i', 'echo é'],
      ['o', 'caf'],
      ['o', '€'],
      ['r', '120x40'],
    ]);
    expect(live).toEqual(events);
    const [info] = recordings.list('e1', 'alice');
    expect(info).toMatchObject({ live: false, endedAt: expect.any(String) });
    expect(info?.bytes).toBe(readFileSync(join(dir, 'e1', 'alice', `${rec.id}.cast`)).length);
    expect(recordings.files('e1').map((f) => f.name)).toEqual([`alice/${rec.id}.cast`, `alice/${rec.id}.json`]);
    expect(() => recordings.read('e1', 'alice', '../../etc/passwd')).toThrow(/no recording/);
    expect(() => recordings.read('e1', 'bob', rec.id)).toThrow(/no recording/);
  });
});

describe('session registry: cut with a reason, presence for the room view', () => {
  test('shells are counted and cut first, with the reason; a login holding the door is cut too but not counted', () => {
    const sessions = new SessionRegistry();
    const closed: string[] = [];
    sessions.register('e1', 'alice', () => closed.push('login'), { counted: false });
    const forget = sessions.register('e1', 'alice', (r) => closed.push(`shell:${r}`));
    sessions.register('e1', 'bob', (r) => closed.push(`bob:${r}`));
    expect(sessions.presence('e1', 'alice')).toMatchObject({ connected: 1, lastActivityAt: expect.any(String) });
    expect(sessions.total()).toBe(2);
    forget();
    expect(sessions.open('e1', 'alice')).toBe(0);
    const again = sessions.register('e1', 'alice', (r) => closed.push(`shell:${r}`));
    expect(sessions.cut('e1', 'alice', 'time-up')).toBe(2);
    expect(closed).toEqual(['shell:time-up', 'login']);
    again();
    expect(sessions.presence('e1', 'alice').connected).toBe(0);
    expect(sessions.presence('e1', 'nobody')).toEqual({ connected: 0, lastActivityAt: undefined });
    sessions.closeAll();
    expect(closed.at(-1)).toBe('bob:ended');
  });
});
