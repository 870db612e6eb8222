import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statfsSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';

/*
 * `examlab-probe serve` (images/toolbox/examlab-probe.c), the real static
 * binary, run here against fixtures in a temp dir and servers on the
 * loopback. EXAMLAB_PROBE names another build (a sanitizer build, say).
 */
const PROBE = process.env.EXAMLAB_PROBE ?? fileURLToPath(new URL('../../../build/toolbox/examlab-probe', import.meta.url));
if (!existsSync(PROBE)) {
  throw new Error(
    `${PROBE} is missing: build it with \`make toolbox\` ` +
      '(gcc -static -Os -Wall -Wextra -Wno-format-truncation -o build/toolbox/examlab-probe images/toolbox/examlab-probe.c)',
  );
}

type Status = 'ok' | 'part' | 'neg' | 'err';
interface ProbeRecord {
  id: number;
  status: Status;
  data: Buffer;
}
interface Answer {
  status: Status;
  text: string;
}
interface Exit {
  code: number | null;
  stdout: Buffer;
  stderr: string;
  ms: number;
}
type Request = Array<string | number>;

/** Runs the probe (`prefix` before it: a privilege wrapper) with `input` on stdin, until it exits. */
function runProbe(input: string | Buffer, options: { args?: string[]; prefix?: string[]; started?: (pid: number) => void } = {}): Promise<Exit> {
  const [command = PROBE, ...rest] = [...(options.prefix ?? []), PROBE, ...(options.args ?? ['serve'])];
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(command, rest, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdin.on('error', () => undefined); // a refused input: the probe exits before reading all of it
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr, ms: Date.now() - started }));
    child.stdin.end(input);
    if (child.pid) options.started?.(child.pid);
  });
}

/** The output read as strictly as the grader must: framed records, then `end<TAB>count` and nothing after. */
function parseRecords(out: Buffer): ProbeRecord[] {
  const records: ProbeRecord[] = [];
  for (let at = 0; ; ) {
    const eol = out.indexOf(0x0a, at);
    if (eol < 0) throw new Error(`no end line after ${records.length} records`);
    const head = out.subarray(at, eol).toString('latin1');
    const end = /^end\t(0|[1-9]\d*)$/.exec(head);
    if (end) {
      if (eol + 1 !== out.length) throw new Error('bytes after the end line');
      if (Number(end[1]) !== records.length) throw new Error(`the end line says ${end[1]}, ${records.length} records came`);
      return records;
    }
    const m = /^([1-9]\d{0,8})\t(ok|part|neg|err)\t(0|[1-9]\d*)$/.exec(head);
    if (!m) throw new Error(`malformed record header ${JSON.stringify(head)}`);
    const start = eol + 1;
    const size = Number(m[3]);
    if (start + size >= out.length || out[start + size] !== 0x0a) throw new Error(`record ${m[1]} is misframed`);
    records.push({ id: Number(m[1]), status: m[2] as Status, data: out.subarray(start, start + size) });
    at = start + size + 1;
  }
}

function encode(requests: Array<[number, ...Request]>, deadlineMs: number): string {
  return [`examlab-probe 1 ${deadlineMs}`, ...requests.map((r) => r.join('\t'))].map((line) => `${line}\n`).join('');
}

/** Runs requests (ids 1, 2, ...) and returns their records by id (they come as answered), after checking exit code and framing: one record each. */
async function askRecords(requests: Request[], deadlineMs = 10_000, prefix: string[] = []): Promise<ProbeRecord[]> {
  const exit = await runProbe(encode(requests.map((r, i) => [i + 1, ...r]), deadlineMs), { prefix });
  expect(exit.stderr).toBe('');
  expect(exit.code).toBe(0);
  const records = parseRecords(exit.stdout).sort((x, y) => x.id - y.id);
  expect(records.map((r) => r.id)).toEqual(requests.map((_, i) => i + 1));
  return records;
}

async function ask(...requests: Request[]): Promise<Answer[]> {
  return (await askRecords(requests)).map((r) => ({ status: r.status, text: r.data.toString('utf8') }));
}

async function ask1(...request: Request): Promise<Answer> {
  const [answer] = await ask(request);
  if (!answer) throw new Error('no answer');
  return answer;
}

/** A refused input: the single record 0, status err, exit 2, nothing else. Returns its message. */
async function refusal(input: string | Buffer, args?: string[]): Promise<string> {
  const exit = await runProbe(input, { args });
  expect(exit.code).toBe(2);
  const m = /^0\terr\t(\d+)\n/.exec(exit.stdout.toString('latin1'));
  if (!m) throw new Error(`not a refusal: ${JSON.stringify(exit.stdout.toString('latin1').slice(0, 200))}`);
  const size = Number(m[1]);
  expect(exit.stdout.length).toBe(m[0].length + size + 1);
  expect(exit.stdout[m[0].length + size]).toBe(0x0a);
  return exit.stdout.subarray(m[0].length, m[0].length + size).toString();
}

/** The `run` payload for a command's result. */
function ran(exit: number, signal: number, timedOut: 0 | 1, stdout: string, stderr: string): string {
  return `exit=${exit}\nsignal=${signal}\ntimed_out=${timedOut}\nstdout=${stdout.length}\nstderr=${stderr.length}\n\n${stdout}${stderr}`;
}

/** A loopback TCP server; connections are kept to be destroyed at the end. */
async function listen(onConnection: (socket: Socket) => void, host = '127.0.0.1'): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => undefined); // the probe resets what it stops reading
    onConnection(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  servers.push(server);
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no port');
  return { server, port: address.port };
}

/** A port on 127.0.0.1 where nothing listens (it was just free). */
async function closedPort(): Promise<number> {
  const { server, port } = await listen(() => undefined);
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const servers: Array<Server | UdpSocket> = [];
const sockets: Socket[] = [];
const children: ChildProcess[] = [];
let dir: string;

/** NAME's IPv4 address in /etc/hosts (first non-comment line, any case), as the probe should find it. */
function hostsAddress(name: string): string | undefined {
  const lines = existsSync('/etc/hosts') ? readFileSync('/etc/hosts', 'utf8').split('\n') : [];
  for (const line of lines) {
    const [address = '', ...names] = line.replace(/#.*/, '').trim().split(/[ \t\r]+/);
    if (/^\d+\.\d+\.\d+\.\d+$/.test(address) && names.some((n) => n.toLowerCase() === name.toLowerCase())) return address;
  }
  return undefined;
}

/* ---------- a DNS server on 127.0.0.1:53 (the probe always asks port 53) ---------- */

/** A reproducible pseudo-random sequence (mulberry32). */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function dnsName(...labels: Array<string | Buffer>): Buffer {
  return Buffer.concat([...labels.flatMap((l) => [Buffer.from([Buffer.byteLength(l)]), Buffer.from(l)]), Buffer.from([0])]);
}

/** The replies to one query, chosen by the name asked. */
function dnsReplies(query: Buffer): Buffer[] {
  const id = query.readUInt16BE(0);
  const labels: string[] = [];
  let off = 12;
  while (off < query.length && query[off]) {
    const len = query[off] ?? 0;
    labels.push(query.subarray(off + 1, off + 1 + len).toString('latin1'));
    off += 1 + len;
  }
  const question = query.subarray(12, off + 5);
  const name = labels.join('.');
  const header = (rid: number, rcode: number, answers: number) => {
    const h = Buffer.alloc(12);
    h.writeUInt16BE(rid, 0);
    h.writeUInt16BE(0x8180 | rcode, 2);
    h.writeUInt16BE(1, 4);
    h.writeUInt16BE(answers, 6);
    return h;
  };
  const record = (type: number, rdata: Buffer) => {
    const r = Buffer.alloc(12);
    r.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's
    r.writeUInt16BE(type, 2);
    r.writeUInt16BE(1, 4);
    r.writeUInt32BE(60, 6);
    r.writeUInt16BE(rdata.length, 10);
    return Buffer.concat([r, rdata]);
  };
  const answer = (...records: Buffer[]) => Buffer.concat([header(id, 0, records.length), question, ...records]);
  const mixed = () =>
    answer(
      record(1, Buffer.from([127, 0, 0, 7])),
      record(15, Buffer.concat([Buffer.from([0, 10]), dnsName('mail', 'test')])),
      record(5, dnsName('alias', 'test')),
      record(16, Buffer.from('\x05hello\x03you')),
      record(28, Buffer.from('00000000000000000000000000000001', 'hex')),
      record(33, Buffer.concat([Buffer.from([0, 1, 0, 2, 0, 3]), dnsName('srv', 'test')])),
    );
  const fuzz = /^(fuzz|mutate)-(\d+)$/.exec(labels[0] ?? '');
  if (fuzz) {
    const next = random(Number(fuzz[2]));
    let reply: Buffer;
    if (fuzz[1] === 'fuzz') {
      reply = Buffer.from(Array.from({ length: 12 + Math.floor(next() * 500) }, () => Math.floor(next() * 256)));
    } else {
      reply = mixed();
      for (let flips = 1 + Math.floor(next() * 4); flips > 0; flips--) reply[12 + Math.floor(next() * (reply.length - 12))] = Math.floor(next() * 256);
      if (next() < 0.3) reply = reply.subarray(0, 12 + Math.floor(next() * (reply.length - 11)));
    }
    reply.writeUInt16BE(id, 0);
    reply[2] = (reply[2] ?? 0) | 0x80;
    return [reply];
  }
  switch (name) {
    case 'a.test':
      return [answer(record(1, Buffer.from([127, 0, 0, 7])), record(1, Buffer.from([127, 0, 0, 8])))];
    case 'web.test':
      return [answer(record(5, dnsName('www', 'test')), record(1, Buffer.from([127, 0, 0, 1])))];
    case 'srv.test': // an SRV answer whose target is compressed: a pointer to the question's name
      return [answer(record(33, Buffer.from([0, 0, 0, 100, 1, 133, 0xc0, 12])), record(33, Buffer.concat([Buffer.from([0, 5, 0, 0, 0, 88]), dnsName('kdc', 'test')])))];
    case 'mx-only.test':
      return [answer(record(15, Buffer.concat([Buffer.from([0, 10]), dnsName('mail', 'test')])))];
    case 'mixed.test':
      return [mixed()];
    case 'odd.test': // a TXT with a tab, a CNAME whose label holds a line feed
      return [answer(record(16, Buffer.from('\x0bhello\tworld')), record(5, dnsName('we\nird', 'test')))];
    case 'nx.test':
      return [Buffer.concat([header(id, 3, 0), question])];
    case 'wrongid.test': // a stray reply first: it must be ignored
      return [Buffer.concat([header(id ^ 1, 0, 0), question]), answer(record(1, Buffer.from([127, 0, 0, 9])))];
    case 'short.test': // one answer announced, none there
      return [Buffer.concat([header(id, 0, 1), question])];
    case 'loop.test': {
      const looping = Buffer.concat([header(id, 0, 1), question, Buffer.from([0xc0, 12 + question.length])]);
      return [Buffer.concat([looping, Buffer.alloc(10)])];
    }
    default: // silent.test and anything else: no reply
      return [];
  }
}

async function startDns(): Promise<UdpSocket | undefined> {
  const socket = createSocket('udp4');
  socket.on('message', (msg, peer) => {
    for (const reply of dnsReplies(msg)) socket.send(reply, peer.port, peer.address);
  });
  return new Promise((resolve) => {
    socket.once('error', () => {
      socket.close();
      resolve(undefined);
    });
    socket.bind(53, '127.0.0.1', () => resolve(socket));
  });
}

const dns = await startDns();
if (dns) servers.push(dns);
/* Binding port 53 takes root (or a low ip_unprivileged_port_start): without it, the dns tests are skipped, not passed. */
const dnsTest = dns ? test : test.skip;

/*
 * /etc/resolv.conf and /etc/hosts are the machine's: to give the probe others, it runs in a private
 * mount namespace with files bound over them (root only; skipped otherwise).
 */
const canUnshare = process.getuid?.() === 0 && spawnSync('unshare', ['-m', 'true']).status === 0;
const machineTest = dns && canUnshare ? test : test.skip;

async function askMachine(files: { resolv: string; hosts: string }, ...requests: Request[]): Promise<Answer[]> {
  const script = 'mount --bind "$1" /etc/resolv.conf && mount --bind "$2" /etc/hosts && exec "$3" "$4"';
  const records = await askRecords(requests, 10_000, ['unshare', '-m', 'sh', '-c', script, 'sh', files.resolv, files.hosts]);
  return records.map((r) => ({ status: r.status, text: r.data.toString('utf8') }));
}

/* ---------- fixtures ---------- */

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'examlab-probe-'));
  writeFileSync(join(dir, 'hello.txt'), 'hello\nworld\n');
  chmodSync(join(dir, 'hello.txt'), 0o640);
  writeFileSync(join(dir, 'setuid'), '');
  chmodSync(join(dir, 'setuid'), 0o4755);
  symlinkSync('hello.txt', join(dir, 'link'));
  symlinkSync('nowhere', join(dir, 'dangling'));
  writeFileSync(join(dir, 'framing'), 'x\n1\tok\t3\nend\t1\n');
  writeFileSync(join(dir, 'binary'), Buffer.from([0, 1, 2, 0x0a, 0xff, 0]));
  const mkfifo = spawnSync('mkfifo', [join(dir, 'fifo')]);
  if (mkfifo.status !== 0) throw new Error(`mkfifo: ${mkfifo.stderr}`);
  mkdirSync(join(dir, 'sub'));
  for (const name of ['b', 'a', 'c\twith tab', 'd\nwith lf']) writeFileSync(join(dir, 'sub', name), '');
  mkdirSync(join(dir, 'sub', 'inner'));
  symlinkSync('../hello.txt', join(dir, 'sub', 'to-hello'));
  mkdirSync(join(dir, 'many'));
  // 10001 entries: coreutils make (and remove) them far quicker than node's fs calls one by one.
  const many = spawnSync('sh', ['-c', 'seq -w 0 10000 | xargs touch'], { cwd: join(dir, 'many') });
  if (many.status !== 0) throw new Error(`touch: ${many.stderr}`);
});

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  for (const socket of sockets) socket.destroy();
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(() => resolve(undefined)))));
  spawnSync('rm', ['-rf', join(dir, 'many')]);
  rmSync(dir, { recursive: true, force: true });
});

/* ---------- the protocol ---------- */

describe('framing', () => {
  test('one record per request, in request order, lengths exact even around payload bytes that look like framing', async () => {
    const input = encode(
      [
        [7, 'read', join(dir, 'framing'), 100],
        [3, 'read', join(dir, 'binary'), 100],
        [42, 'lstat', join(dir, 'nothing-here')],
      ],
      10_000,
    );
    const exit = await runProbe(input);
    expect(exit.code).toBe(0);
    const records = parseRecords(exit.stdout);
    expect(records.map((r) => [r.id, r.status])).toEqual([
      [7, 'ok'],
      [3, 'ok'],
      [42, 'neg'],
    ]);
    expect(records[0]?.data.toString()).toBe('x\n1\tok\t3\nend\t1\n');
    expect(records[1]?.data).toEqual(Buffer.from([0, 1, 2, 0x0a, 0xff, 0]));
    expect(exit.stdout.toString('latin1').endsWith('\nend\t3\n')).toBe(true);
  });

  test('a header and no requests: just the end line', async () => {
    const exit = await runProbe('examlab-probe 1 1000\n');
    expect(exit.code).toBe(0);
    expect(exit.stdout.toString()).toBe('end\t0\n');
  });

  test('an unknown verb or a wrong number of arguments answers err for that request only', async () => {
    expect(await ask(['bogus', 'x'], ['lstat'], ['lstat', '/', '/'], ['dns', 'A'], ['lstat', '/'])).toEqual([
      { status: 'err', text: 'unknown verb: bogus' },
      { status: 'err', text: 'lstat takes 1 argument, not 0' },
      { status: 'err', text: 'lstat takes 1 argument, not 2' },
      { status: 'err', text: 'dns takes 3 to 4 arguments, not 1' },
      expect.objectContaining({ status: 'ok' }),
    ]);
  });
});

describe('a malformed input is refused whole: record 0, exit 2, no work done', () => {
  test.each([
    ['a bad header', 'examlab-probe 2 1000\n', 'line 1: not a header `examlab-probe 1 DEADLINE_MS`'],
    ['a header with a zero deadline', 'examlab-probe 1 0\n', 'line 1: not a header `examlab-probe 1 DEADLINE_MS`'],
    ['a header with a CR', 'examlab-probe 1 100\r\n', 'line 1: not a header `examlab-probe 1 DEADLINE_MS`'],
    ['no input at all', '', 'line 1: no header'],
    ['a line with no verb', 'examlab-probe 1 1000\n1\n', 'line 2: no verb'],
    ['a line with an empty verb', 'examlab-probe 1 1000\n1\t\tx\n', 'line 2: no verb'],
    ['an empty line', 'examlab-probe 1 1000\n1\tprocs\n\n', 'line 3: the id is not a number from 1 to 999999999'],
    ['id 0', 'examlab-probe 1 1000\n0\tprocs\n', 'line 2: the id is not a number from 1 to 999999999'],
    ['an id with a leading zero', 'examlab-probe 1 1000\n01\tprocs\n', 'line 2: the id is not a number from 1 to 999999999'],
    ['an id too large', 'examlab-probe 1 1000\n1000000000\tprocs\n', 'line 2: the id is not a number from 1 to 999999999'],
    ['a duplicate id', 'examlab-probe 1 1000\n1\tprocs\n2\tprocs\n1\tprocs\n', 'line 4: duplicate id 1 (first on line 2)'],
    ['a last line without LF', 'examlab-probe 1 1000\n1\tprocs', 'line 2: the line does not end with LF'],
    ['a NUL byte', 'examlab-probe 1 1000\n1\tlstat\t/a\0b\n', 'line 2: NUL byte'],
    ['17 arguments', `examlab-probe 1 1000\n1\trun${'\tx'.repeat(17)}\n`, 'line 2: more than 16 arguments'],
    ['a line over 64 KiB', `examlab-probe 1 1000\n1\tlstat\t/${'a'.repeat(65_536)}\n`, 'line 2: the line is longer than 65536 bytes'],
  ])('%s', async (_what, input, message) => {
    expect(await refusal(input)).toBe(message);
  });

  test('16 arguments are fine (the verb then says it takes fewer)', async () => {
    const exit = await runProbe(`examlab-probe 1 1000\n1\trun${'\tx'.repeat(16)}\n`);
    expect(parseRecords(exit.stdout)[0]?.data.toString()).toBe('run takes 3 to 4 arguments, not 16');
  });

  test('an input over 1 MiB, at the line where it crosses the limit', async () => {
    const header = 'examlab-probe 1 5000\n';
    const line = `1\tlstat\t/${'a'.repeat(1000)}\n`;
    const crossing = Math.floor(((1 << 20) - header.length) / line.length) + 2; // the header, the lines that fit, then this one
    expect(await refusal(header + line.repeat(1100))).toBe(`line ${crossing}: the input is larger than 1048576 bytes`);
  });

  test('nothing runs when a later line is malformed', async () => {
    const marker = join(dir, 'ran-anyway');
    const input = `examlab-probe 1 5000\n1\trun\t2000\t/bin/sh\ttouch '${marker}'\n2\tprocs\n2\tprocs\n`;
    expect(await refusal(input)).toBe('line 4: duplicate id 2 (first on line 3)');
    expect(existsSync(marker)).toBe(false);
  });

  test('serve takes no arguments', async () => {
    expect(await refusal('examlab-probe 1 1000\n', ['serve', 'extra'])).toBe('serve takes no arguments');
  });
});

/* ---------- files ---------- */

describe('lstat, read, list, statfs', () => {
  test('lstat: type, mode with setuid, owner, size; a symlink is not followed and names its target', async () => {
    const file = lstatSync(join(dir, 'hello.txt'));
    const owner = `uid=${file.uid}\ngid=${file.gid}\n`;
    expect(
      await ask(
        ['lstat', join(dir, 'hello.txt')],
        ['lstat', join(dir, 'setuid')],
        ['lstat', join(dir, 'link')],
        ['lstat', join(dir, 'fifo')],
        ['lstat', join(dir, 'sub')],
        ['lstat', '/dev/null'],
        ['lstat', join(dir, 'nothing')],
        ['lstat', join(dir, 'hello.txt', 'below-a-file')],
      ),
    ).toEqual([
      { status: 'ok', text: `type=file\nmode=0640\n${owner}size=12\n` },
      { status: 'ok', text: `type=file\nmode=4755\n${owner}size=0\n` },
      { status: 'ok', text: `type=symlink\nmode=0777\n${owner}size=9\ntarget=hello.txt\n` },
      { status: 'ok', text: `type=fifo\nmode=${(lstatSync(join(dir, 'fifo')).mode & 0o7777).toString(8).padStart(4, '0')}\n${owner}size=0\n` },
      { status: 'ok', text: expect.stringMatching(/^type=directory\nmode=0\d{3}\n/) },
      { status: 'ok', text: expect.stringMatching(/^type=character\nmode=0666\nuid=0\ngid=0\nsize=0\n$/) },
      { status: 'neg', text: 'missing' },
      { status: 'neg', text: 'missing' },
    ]);
  });

  test('read: the whole file is ok, a cut one part; symlinks are followed; size-0 procfs files are read to EOF', async () => {
    expect(
      await ask(
        ['read', join(dir, 'hello.txt'), 100],
        ['read', join(dir, 'hello.txt'), 12],
        ['read', join(dir, 'hello.txt'), 5],
        ['read', join(dir, 'hello.txt'), 0],
        ['read', join(dir, 'link'), 100],
        ['read', '/proc/version', 65536],
      ),
    ).toEqual([
      { status: 'ok', text: 'hello\nworld\n' },
      { status: 'ok', text: 'hello\nworld\n' },
      { status: 'part', text: 'hello' },
      { status: 'part', text: '' },
      { status: 'ok', text: 'hello\nworld\n' },
      { status: 'ok', text: readFileSync('/proc/version', 'utf8') },
    ]);
  });

  test('read: only regular files; a FIFO answers err at once instead of blocking', async () => {
    const started = Date.now();
    const unix = join(dir, 'unix.sock');
    servers.push(await new Promise<Server>((resolve) => {
      const server = createServer();
      server.listen(unix, () => resolve(server));
    }));
    expect(
      await ask(
        ['read', join(dir, 'fifo'), 100],
        ['read', join(dir, 'sub'), 100],
        ['read', unix, 100],
        ['read', '/dev/null', 100],
        ['read', join(dir, 'nothing'), 100],
        ['read', join(dir, 'dangling'), 100],
        ['read', join(dir, 'hello.txt', 'x'), 100],
        ['read', join(dir, 'hello.txt'), 1_048_577],
        ['read', join(dir, 'hello.txt'), '12k'],
      ),
    ).toEqual([
      { status: 'err', text: 'not a regular file (fifo)' },
      { status: 'err', text: 'not a regular file (directory)' },
      { status: 'err', text: 'not a regular file (socket)' },
      { status: 'err', text: 'not a regular file (character)' },
      { status: 'neg', text: 'missing' },
      { status: 'neg', text: 'missing' },
      { status: 'neg', text: 'missing' },
      { status: 'err', text: 'MAXBYTES must be a number up to 1048576: 1048577' },
      { status: 'err', text: 'MAXBYTES must be a number up to 1048576: 12k' },
    ]);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  test('list: sorted entries with type and symlink target; TAB and LF in names become spaces', async () => {
    expect(await ask(['list', join(dir, 'sub')], ['list', join(dir, 'nothing')], ['list', join(dir, 'hello.txt')])).toEqual([
      {
        status: 'ok',
        text: [
          'file\ta\t',
          'file\tb\t',
          'file\tc with tab\t',
          'file\td with lf\t',
          'directory\tinner\t',
          'symlink\tto-hello\t../hello.txt',
          '',
        ].join('\n'),
      },
      { status: 'neg', text: 'missing' },
      { status: 'err', text: 'not a directory (file)' },
    ]);
  });

  test('list: at most 10000 entries, then part', async () => {
    const [answer] = await ask(['list', join(dir, 'many')]);
    const lines = answer?.text.split('\n') ?? [];
    expect(answer?.status).toBe('part');
    expect(lines.pop()).toBe('');
    expect(lines).toHaveLength(10_000);
    expect(lines.every((l) => /^file\t\d{5}\t$/.test(l))).toBe(true);
    expect([...lines].sort()).toEqual(lines);
    expect(readdirSync(join(dir, 'many'))).toHaveLength(10_001);
  });

  test('statfs: the statvfs counts of the file system', async () => {
    const [found, missing] = await ask(['statfs', dir], ['statfs', join(dir, 'nothing')]);
    expect(found?.status).toBe('ok');
    expect(found?.text).toMatch(/^bsize=\d+\nblocks=\d+\nbfree=\d+\nbavail=\d+\nfiles=\d+\nffree=\d+\n$/);
    expect(found?.text).toContain(`\nblocks=${statfsSync(dir).blocks}\n`);
    expect(missing).toEqual({ status: 'neg', text: 'missing' });
  });
});

/* ---------- processes ---------- */

/** The cgroup path the probe should report for a process (name=systemd, else the 0:: line). */
function cgroupOf(pid: number): string {
  const lines = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n');
  const field = (prefix: RegExp) => lines.find((l) => prefix.test(l))?.replace(/^[^:]*:[^:]*:/, '');
  return field(/^\d+:name=systemd:/) ?? field(/^0::/) ?? '';
}

describe('procs and cgroup', () => {
  let sleeper: ChildProcess;
  let pid: number;
  beforeAll(async () => {
    // Started through a link whose name holds a tab: comm and cmdline carry it, and must come out flattened.
    const odd = join(dir, 'sl\teep');
    symlinkSync('/bin/sleep', odd);
    sleeper = spawn(odd, ['30'], { stdio: 'ignore' });
    children.push(sleeper);
    pid = sleeper.pid ?? 0;
    await new Promise((resolve) => setTimeout(resolve, 100));
  });

  test('procs: pid, ppid, real uid, comm, exe, cgroup, cmdline; the probe itself is left out', async () => {
    let probePid = 0;
    const exit = await runProbe('examlab-probe 1 10000\n1\tprocs\n', { started: (p) => (probePid = p) });
    const [record] = parseRecords(exit.stdout);
    expect(record?.status).toBe('ok');
    const lines = record?.data.toString().split('\n') ?? [];
    expect(lines.pop()).toBe('');
    expect(lines.every((l) => l.split('\t').length === 7)).toBe(true);
    const exe = readlinkSync(`/proc/${pid}/exe`);
    expect(lines).toContain(`${pid}\t${process.pid}\t${process.getuid?.()}\tsl eep\t${exe}\t${cgroupOf(pid)}\t${dir}/sl eep 30`);
    expect(lines.find((l) => l.startsWith(`${process.pid}\t`))).toBeDefined();
    expect(lines.find((l) => l.startsWith(`${probePid}\t`))).toBeUndefined();
    const pids = lines.map((l) => Number(l.split('\t')[0]));
    expect([...pids].sort((a, b) => a - b)).toEqual(pids);
  });

  test('cgroup: the processes of the cgroup our sleeper is in; missing and invalid paths', async () => {
    const relative = cgroupOf(pid).replace(/^\//, '');
    const [found, ...rest] = await ask(
      ['cgroup', relative],
      ['cgroup', 'examlab-no-such-cgroup'],
      ['cgroup', '/system.slice'],
      ['cgroup', 'system.slice/../x'],
    );
    expect(found?.status).toBe('ok');
    expect(found?.text.split('\n')).toContain(`${pid}\t${readlinkSync(`/proc/${pid}/exe`)}\t${dir}/sl eep 30`);
    expect(rest).toEqual([
      { status: 'neg', text: 'missing' },
      { status: 'err', text: 'RELPATH must be relative: /system.slice' },
      { status: 'err', text: "RELPATH must not hold '..': system.slice/../x" },
    ]);
  });
});

/* ---------- network ---------- */

/**
 * A loopback port that never answers a SYN: a listener (in another process,
 * its event loop blocked so it never accepts) whose accept queue is full.
 */
async function silentPort(): Promise<number> {
  const script = `
    const server = require('net').createServer();
    server.listen({ host: '127.0.0.1', port: 0, backlog: 1 }, () => {
      process.stdout.write(server.address().port + '\\n');
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60000);
    });`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const port = await new Promise<number>((resolve) => child.stdout?.once('data', (d: Buffer) => resolve(Number(String(d).trim()))));
  const fillers = Array.from({ length: 3 }, () => connect(port, '127.0.0.1').on('error', () => undefined));
  sockets.push(...fillers);
  await new Promise((resolve) => setTimeout(resolve, 200));
  return port;
}

describe('connect and ping', () => {
  test('connect: ok with the time taken; refused, silent and malformed targets', async () => {
    const { port } = await listen((s) => s.end());
    const [silent, refused] = await Promise.all([silentPort(), closedPort()]);
    const started = Date.now();
    expect(
      await ask(
        ['connect', '127.0.0.1', port, 2000],
        ['connect', '127.0.0.1', refused, 2000],
        ['connect', '127.0.0.1', silent, 300],
        ['connect', 'localhost', port, 300],
        ['connect', '127.0.0.1', 0, 300],
        ['connect', '127.0.0.1', 65536, 300],
        ['connect', '127.0.0.1', port, '3s'],
      ),
    ).toEqual([
      { status: 'ok', text: expect.stringMatching(/^ms=\d+\n$/) },
      { status: 'neg', text: 'reason=Connection refused\n' },
      { status: 'neg', text: 'reason=no answer within 300 ms\n' },
      { status: 'err', text: 'not a numeric address: localhost' },
      { status: 'err', text: 'bad PORT: 0' },
      { status: 'err', text: 'bad PORT: 65536' },
      { status: 'err', text: 'bad MS: 3s' },
    ]);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  test('connect over IPv6 loopback, where there is one', async () => {
    let port: number;
    try {
      ({ port } = await listen((s) => s.end(), '::1'));
    } catch {
      return expect(existsSync('/proc/net/if_inet6') && readFileSync('/proc/net/if_inet6', 'utf8').includes(' lo')).toBe(false);
    }
    expect(await ask1('connect', '::1', port, 2000)).toEqual({ status: 'ok', text: expect.stringMatching(/^ms=\d+\n$/) });
  });

  test('ping: an echo reply from 127.0.0.1 when an ICMP socket can be opened, else err saying so', async () => {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ping_group_range', 'utf8').trim().split(/\s+/).map(Number);
    const gid = process.getgid?.() ?? -1;
    const capEff = BigInt(`0x${/CapEff:\s*([0-9a-f]+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0'}`);
    const canPing = (gid >= (low ?? 1) && gid <= (high ?? 0)) || (capEff & (1n << 13n)) !== 0n; // CAP_NET_RAW
    const [loopback, v6, name, ms] = await ask(['ping', '127.0.0.1', 2000], ['ping', '::1', 500], ['ping', 'localhost', 500], ['ping', '127.0.0.1', 'x']);
    if (canPing) expect(loopback).toEqual({ status: 'ok', text: expect.stringMatching(/^ms=\d+\n$/) });
    else expect(loopback).toEqual({ status: 'err', text: expect.stringMatching(/^cannot open an ICMP socket: /) });
    expect([v6, name, ms]).toEqual([
      { status: 'err', text: 'not a numeric IPv4 address: ::1' },
      { status: 'err', text: 'not a numeric IPv4 address: localhost' },
      { status: 'err', text: 'bad MS: x' },
    ]);
  });
});

describe('dns and resolve', () => {
  dnsTest('dns: answers of each type, any rcode, as KEY=VALUE lines with no TAB or LF inside a value', async () => {
    expect(
      await ask(
        ['dns', 'A', 'a.test', 2000, '127.0.0.1'],
        ['dns', 'mx', 'mixed.test', 2000, '127.0.0.1'],
        ['dns', 'TXT', 'odd.test', 2000, '127.0.0.1'],
        ['dns', 'A', 'nx.test', 2000, '127.0.0.1'],
        ['dns', 'A', 'wrongid.test', 2000, '127.0.0.1'],
        ['dns', 'SRV', 'srv.test', 2000, '127.0.0.1'],
      ),
    ).toEqual([
      { status: 'ok', text: 'server=127.0.0.1\nrcode=NOERROR\nanswer=A 127.0.0.7\nanswer=A 127.0.0.8\n' },
      {
        status: 'ok',
        text: 'server=127.0.0.1\nrcode=NOERROR\nanswer=A 127.0.0.7\nanswer=MX 10 mail.test\nanswer=CNAME alias.test\nanswer=TXT helloyou\nanswer=AAAA ::1\nanswer=SRV 1 2 3 srv.test\n',
      },
      { status: 'ok', text: 'server=127.0.0.1\nrcode=NOERROR\nanswer=TXT hello world\nanswer=CNAME we ird.test\n' },
      { status: 'ok', text: 'server=127.0.0.1\nrcode=NXDOMAIN\n' },
      { status: 'ok', text: 'server=127.0.0.1\nrcode=NOERROR\nanswer=A 127.0.0.9\n' },
      { status: 'ok', text: 'server=127.0.0.1\nrcode=NOERROR\nanswer=SRV 0 100 389 srv.test\nanswer=SRV 5 0 88 kdc.test\n' },
    ]);
  });

  dnsTest('dns: silence is neg; malformed answers, bad types and servers are err', async () => {
    const started = Date.now();
    expect(
      await ask(
        ['dns', 'A', 'silent.test', 300, '127.0.0.1'],
        ['dns', 'A', 'short.test', 2000, '127.0.0.1'],
        ['dns', 'A', 'loop.test', 2000, '127.0.0.1'],
        ['dns', 'SOA', 'a.test', 2000, '127.0.0.1'],
        ['dns', 'A', 'a.test', 2000, 'localhost'],
        ['dns', 'A', 'bad..name', 2000, '127.0.0.1'],
      ),
    ).toEqual([
      { status: 'neg', text: 'server=127.0.0.1\nreason=no answer within 300 ms\n' },
      { status: 'err', text: 'server=127.0.0.1\nrcode=NOERROR\nerror=malformed answer\n' },
      { status: 'err', text: 'server=127.0.0.1\nrcode=NOERROR\nerror=malformed answer\n' },
      { status: 'err', text: 'error=unsupported record type SOA\n' },
      { status: 'err', text: 'error=not a numeric server address: localhost\n' },
      { status: 'err', text: 'error=invalid name: bad..name\n' },
    ]);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  dnsTest('waits on the network run side by side: six silent servers of 1.5 s each fit in a 3 s run, and local work goes on meanwhile', async () => {
    const silent: Request = ['dns', 'A', 'silent.test', 1500, '127.0.0.1'];
    const records = await askRecords([silent, silent, ['lstat', '/'], silent, silent, silent, silent], 3000);
    expect(records.map((r) => r.status)).toEqual(['neg', 'neg', 'ok', 'neg', 'neg', 'neg', 'neg']);
  });

  dnsTest('dns: random and mutated answer packets never crash the probe nor break a line', async () => {
    const requests: Request[] = [];
    for (let i = 1; i <= 400; i++) requests.push(['dns', i % 2 ? 'A' : 'MX', `${i % 4 < 2 ? 'fuzz' : 'mutate'}-${i}.test`, 1000, '127.0.0.1']);
    const records = await askRecords(requests, 30_000);
    for (const record of records) {
      expect(['ok', 'err']).toContain(record.status);
      for (const line of record.data.toString('latin1').split('\n').slice(0, -1))
        expect(line).toMatch(/^(server=127\.0\.0\.1|rcode=[A-Z]+|answer=[A-Z]+ [^\t\n]*|error=malformed answer)$/);
    }
    expect(records.filter((r) => r.status === 'ok').length).toBeGreaterThan(20);
  }, 30_000);

  test('resolve: a literal, /etc/hosts (any case), an invalid name; nothing leaves the machine', async () => {
    const localhost = hostsAddress('localhost');
    const [literal, hosts, invalid, ms] = await ask(
      ['resolve', '127.0.0.1', 300],
      ['resolve', 'LocalHost', 300],
      ['resolve', 'bad..name', 300],
      ['resolve', 'x', -1],
    );
    expect(literal).toEqual({ status: 'ok', text: 'address=127.0.0.1\nsource=literal\n' });
    if (localhost) expect(hosts).toEqual({ status: 'ok', text: `address=${localhost}\nsource=hosts\n` });
    expect(invalid).toEqual({ status: 'neg', text: 'reason=cannot resolve bad..name: not a valid DNS name\n' });
    expect(ms).toEqual({ status: 'err', text: 'bad MS: -1' });
  });
});

describe("the machine's resolver", () => {
  machineTest('resolve and dns without SERVER follow the machine\'s /etc/hosts and resolv.conf', async () => {
    const resolv = join(dir, 'resolv.conf');
    const hosts = join(dir, 'hosts');
    writeFileSync(resolv, '# the loopback responder\nsearch example\nnameserver 127.0.0.1\n');
    writeFileSync(hosts, '# c\n::1 v6only\n127.0.0.5\tMyHost alias # trailing\n127.0.0.6 myhost\n#127.0.0.9 v6only\n');
    const web = await new Promise<{ port: number }>((resolve) => {
      const server = createHttpServer((_req, res) => res.end('via dns'));
      servers.push(server);
      server.listen(0, '127.0.0.1', () => resolve(server.address() as { port: number }));
    });
    expect(
      await askMachine(
        { resolv, hosts },
        ['resolve', 'myhost', 300],
        ['resolve', 'ALIAS', 300],
        ['resolve', 'a.test', 2000],
        ['resolve', 'nx.test', 2000],
        ['resolve', 'mx-only.test', 2000],
        ['resolve', 'v6only', 300],
        ['dns', 'A', 'a.test', 2000],
        ['http', 'web.test', web.port, 'w', '/', 2000, 100],
      ),
    ).toEqual([
      { status: 'ok', text: 'address=127.0.0.5\nsource=hosts\n' },
      { status: 'ok', text: 'address=127.0.0.5\nsource=hosts\n' },
      { status: 'ok', text: 'address=127.0.0.7\nsource=dns\n' },
      { status: 'neg', text: 'reason=cannot resolve nx.test: NXDOMAIN\n' },
      { status: 'neg', text: 'reason=cannot resolve mx-only.test: no A record\n' },
      { status: 'neg', text: 'reason=cannot resolve v6only: no answer within 300 ms\n' },
      { status: 'ok', text: 'server=127.0.0.1\nrcode=NOERROR\nanswer=A 127.0.0.7\nanswer=A 127.0.0.8\n' },
      { status: 'ok', text: expect.stringMatching(/^HTTP\/1\.1 200 OK\r\n.*\r\n\r\nvia dns$/s) },
    ]);
  });

  machineTest('a resolv.conf or hosts planted as a FIFO, or without a nameserver, answers at once', async () => {
    const fifo = join(dir, 'fifo');
    const empty = join(dir, 'resolv-empty.conf');
    writeFileSync(empty, 'search example\n');
    const started = Date.now();
    expect(
      await askMachine({ resolv: fifo, hosts: fifo }, ['resolve', 'x.test', 2000], ['dns', 'A', 'x.test', 2000], ['resolve', '127.0.0.3', 2000]),
    ).toEqual([
      { status: 'neg', text: 'reason=cannot resolve x.test: /etc/resolv.conf is not a regular file (fifo)\n' },
      { status: 'neg', text: 'reason=/etc/resolv.conf is not a regular file (fifo)\n' },
      { status: 'ok', text: 'address=127.0.0.3\nsource=literal\n' },
    ]);
    expect(await askMachine({ resolv: empty, hosts: empty }, ['resolve', 'x.test', 2000], ['dns', 'A', 'x.test', 2000])).toEqual([
      { status: 'neg', text: 'reason=cannot resolve x.test: no nameserver in /etc/resolv.conf\n' },
      { status: 'neg', text: 'reason=no nameserver in /etc/resolv.conf\n' },
    ]);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

describe('http', () => {
  const requests = new Map<string, string>();
  let raw: number;

  beforeAll(async () => {
    // Answers by path; records each request as it came.
    ({ port: raw } = await listen((socket) => {
      let got = '';
      socket.on('data', (chunk) => {
        got += chunk.toString('latin1');
        if (!got.includes('\r\n\r\n')) return;
        const path = got.split(' ')[1] ?? '';
        requests.set(path, got);
        const answers: Record<string, () => void> = {
          '/exact': () => socket.end('HTTP/1.0 200 OK\r\nX-Test: yes\r\n\r\nbody bytes'),
          '/lf': () => socket.end('HTTP/1.0 200 OK\nX-Test: yes\n\nbody'),
          '/big-headers': () => socket.end(`HTTP/1.0 200 OK\r\nX-Fill: ${'a'.repeat(20_000)}\r\n\r\n`),
          '/close': () => socket.end(),
          '/half': () => socket.end('HTTP/1.0 200 OK\r\nX-Te'),
          '/keep-open': () => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody'),
          '/no-content': () => socket.write('HTTP/1.1 204 No Content\r\n\r\n'),
          '/slow': () => socket.write('HTTP/1.0 200 OK\r\n\r\npartial'),
          '/silent': () => undefined,
        };
        (answers[path] ?? (() => socket.end('HTTP/1.0 404 Not Found\r\n\r\n')))();
      });
    }));
  });

  test('the request sent is exact; the response comes back raw, headers then body', async () => {
    expect(await ask1('http', '127.0.0.1', raw, 'vhost.test:8080', '/exact', 2000, 1000)).toEqual({
      status: 'ok',
      text: 'HTTP/1.0 200 OK\r\nX-Test: yes\r\n\r\nbody bytes',
    });
    expect(requests.get('/exact')).toBe('GET /exact HTTP/1.0\r\nHost: vhost.test:8080\r\nUser-Agent: examlab-probe\r\nConnection: close\r\n\r\n');
  });

  test('a real HTTP server, by address and by a name from /etc/hosts', async () => {
    const server = createHttpServer((req, res) => res.end(`hello ${req.headers.host}`));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const [byAddress, byName] = await ask(['http', '127.0.0.1', port, 'site.test', '/', 2000, 100], ['http', 'localhost', port, 'x', '/', 2000, 100]);
    expect(byAddress?.status).toBe('ok');
    expect(byAddress?.text).toMatch(/^HTTP\/1\.1 200 OK\r\n(.+\r\n)*Connection: close\r\n(.+\r\n)*\r\nhello site\.test$/);
    if (hostsAddress('localhost') === '127.0.0.1') expect(byName?.text).toMatch(/\r\n\r\nhello x$/);
  });

  test('the body is cut at MAXBODY (part); Content-Length and 204 end a response the server keeps open', async () => {
    const started = Date.now();
    expect(
      await ask(
        ['http', '127.0.0.1', raw, 'h', '/exact', 2000, 4],
        ['http', '127.0.0.1', raw, 'h', '/exact', 2000, 0],
        ['http', '127.0.0.1', raw, 'h', '/lf', 2000, 100],
        ['http', '127.0.0.1', raw, 'h', '/keep-open', 5000, 100],
        ['http', '127.0.0.1', raw, 'h', '/no-content', 5000, 100],
      ),
    ).toEqual([
      { status: 'part', text: 'HTTP/1.0 200 OK\r\nX-Test: yes\r\n\r\nbody' },
      { status: 'part', text: 'HTTP/1.0 200 OK\r\nX-Test: yes\r\n\r\n' },
      { status: 'ok', text: 'HTTP/1.0 200 OK\nX-Test: yes\n\nbody' },
      { status: 'ok', text: 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody' },
      { status: 'ok', text: 'HTTP/1.1 204 No Content\r\n\r\n' },
    ]);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  test('no response in time, a closed connection, oversized headers, refusal, bad arguments', async () => {
    const [refused, silent] = await Promise.all([closedPort(), silentPort()]);
    expect(
      await ask(
        ['http', '127.0.0.1', raw, 'h', '/silent', 300, 100],
        ['http', '127.0.0.1', raw, 'h', '/slow', 300, 100],
        ['http', '127.0.0.1', raw, 'h', '/close', 2000, 100],
        ['http', '127.0.0.1', raw, 'h', '/half', 2000, 100],
        ['http', '127.0.0.1', raw, 'h', '/big-headers', 2000, 100],
        ['http', '127.0.0.1', refused, 'h', '/', 2000, 100],
        ['http', '127.0.0.1', silent, 'h', '/', 300, 100],
        ['http', 'bad..name', raw, 'h', '/', 300, 100],
        ['http', '127.0.0.1', raw, 'h', 'exact', 300, 100],
        ['http', '127.0.0.1', raw, 'h', '/a b', 300, 100],
        ['http', '127.0.0.1', raw, 'h\rX-Injected: 1', '/', 300, 100],
        ['http', '127.0.0.1', raw, 'h', '/', 300, 1_048_577],
      ),
    ).toEqual([
      { status: 'neg', text: 'reason=no response within 300 ms\n' },
      { status: 'part', text: 'HTTP/1.0 200 OK\r\n\r\npartial' },
      { status: 'neg', text: 'reason=the connection closed without a response\n' },
      { status: 'neg', text: 'reason=the connection closed within the headers, after 21 bytes\n' },
      { status: 'err', text: 'headers too large' },
      { status: 'neg', text: 'reason=cannot connect: Connection refused\n' },
      { status: 'neg', text: 'reason=cannot connect: no answer within 300 ms\n' },
      { status: 'neg', text: 'reason=cannot resolve bad..name: not a valid DNS name\n' },
      { status: 'err', text: 'PATH must start with / and hold no space or CR: exact' },
      { status: 'err', text: 'PATH must start with / and hold no space or CR: /a b' },
      { status: 'err', text: 'HOSTHEADER must hold no CR' },
      { status: 'err', text: 'MAXBODY must be a number up to 1048576: 1048577' },
    ]);
  });
});

/* ---------- commands ---------- */

describe('run', () => {
  test('exit code, stdout then stderr; a fixed environment; stdin at EOF; its own process group', async () => {
    process.env.EXAMLAB_PROBE_TEST_SECRET = 'inherited';
    try {
      expect(
        await ask(
          ['run', 2000, '/bin/sh', 'echo out; echo err >&2; exit 3'],
          ['run', 2000, '/bin/sh', 'echo "$PATH|$LC_ALL|$HOME|$EXAMLAB_PROBE_TEST_SECRET|$(pwd)"'],
          ['run', 2000, '/bin/sh', 'cat; echo read'],
          ['run', 2000, '/bin/sh', 'set -- $(cat /proc/$$/stat); [ "$5" = $$ ] && echo leader'],
          ['run', 2000, '/bin/sh', 'kill -TERM $$'],
        ),
      ).toEqual([
        { status: 'ok', text: ran(3, 0, 0, 'out\n', 'err\n') },
        { status: 'ok', text: ran(0, 0, 0, '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin|C|/root||/\n', '') },
        { status: 'ok', text: ran(0, 0, 0, 'read\n', '') },
        { status: 'ok', text: ran(0, 0, 0, 'leader\n', '') },
        { status: 'ok', text: ran(143, 15, 0, '', '') },
      ]);
    } finally {
      delete process.env.EXAMLAB_PROBE_TEST_SECRET;
    }
  });

  test('MS runs out: the whole group is killed, timed_out=1, what was written is kept', async () => {
    const started = Date.now();
    const [answer] = await ask(['run', 300, '/bin/sh', 'echo before; sleep 5 & sleep 5']);
    expect(answer).toEqual({ status: 'ok', text: ran(137, 9, 1, 'before\n', '') });
    expect(Date.now() - started).toBeLessThan(2000);
  });

  test('what the command leaves behind in its group is killed when it exits', async () => {
    const started = Date.now();
    const [answer] = await ask(['run', 5000, '/bin/sh', 'sleep 30 & echo $!']);
    expect(answer?.status).toBe('ok');
    expect(Date.now() - started).toBeLessThan(2000);
    const left = Number(/\n\n(\d+)\n$/.exec(answer?.text ?? '')?.[1]);
    const state = () => (existsSync(`/proc/${left}/stat`) ? readFileSync(`/proc/${left}/stat`, 'utf8').replace(/^.*\) /s, '')[0] : 'gone');
    // SIGKILL is sent before the probe answers; the process may take a moment to die (then a zombie until its new parent reaps it).
    for (let waited = 0; !['gone', 'Z', 'X'].includes(state() ?? '') && waited < 2000; waited += 50) await new Promise((r) => setTimeout(r, 50));
    expect(['gone', 'Z', 'X']).toContain(state());
  });

  test('output beyond 64 KiB a stream is read and dropped (part), and never blocks the command', async () => {
    const [answer] = await askRecords([['run', 5000, '/bin/sh', 'head -c 300000 /dev/zero; echo done >&2']]);
    expect(answer?.status).toBe('part');
    const text = answer?.data.toString('latin1') ?? '';
    expect(text.startsWith('exit=0\nsignal=0\ntimed_out=0\nstdout=65536\nstderr=5\n\n')).toBe(true);
    expect(answer?.data.length).toBe(text.indexOf('\n\n') + 2 + 65_536 + 5);
    expect(text.endsWith(`${'\0'.repeat(100)}done\n`)).toBe(true);
  });

  test('USER runs it through /bin/su', async () => {
    if (process.getuid?.() !== 0 || !existsSync('/bin/su')) return expect(process.getuid?.() === 0 && existsSync('/bin/su')).toBe(false);
    expect(await ask1('run', 5000, '/bin/sh', 'id -u; echo "$HOME"', 'root')).toEqual({ status: 'ok', text: ran(0, 0, 0, '0\n/root\n', '') });
  });

  test('a shell that cannot be run, a bad MS', async () => {
    expect(await ask(['run', 2000, '/nonexistent/sh', 'true'], ['run', 'soon', '/bin/sh', 'true'], ['run', 2000, '/bin/sh'])).toEqual([
      { status: 'err', text: 'cannot run /nonexistent/sh: No such file or directory' },
      { status: 'err', text: 'bad MS: soon' },
      { status: 'err', text: 'run takes 3 to 4 arguments, not 2' },
    ]);
  });
});

/* ---------- the deadline ---------- */

describe('the deadline', () => {
  test('an operation the deadline cuts, and every request after it, is err deadline; the run ends in time', async () => {
    const started = Date.now();
    const records = await askRecords(
      [
        ['lstat', '/'],
        ['run', 5000, '/bin/sh', 'sleep 5'],
        ['lstat', '/'],
        ['procs'],
      ],
      300,
    );
    expect(records.map((r) => [r.status, r.data.toString()])).toEqual([
      ['ok', expect.stringMatching(/^type=directory\n/)],
      ['err', 'deadline'],
      ['err', 'deadline'],
      ['err', 'deadline'],
    ]);
    expect(Date.now() - started).toBeLessThan(1500);
  });

  test('waits on the network stop at the deadline too', async () => {
    const silent = await silentPort();
    const { port } = await listen(() => undefined);
    const started = Date.now();
    const records = await askRecords(
      [
        ['connect', '127.0.0.1', silent, 5000],
        ['http', '127.0.0.1', port, 'h', '/', 5000, 100],
      ],
      300,
    );
    expect(records.map((r) => [r.status, r.data.toString()])).toEqual([
      ['err', 'deadline'],
      ['err', 'deadline'],
    ]);
    expect(Date.now() - started).toBeLessThan(1500);
  });

  test('input that does not end before the deadline is refused', async () => {
    const child = spawn(PROBE, ['serve'], { stdio: ['pipe', 'pipe', 'ignore'] });
    children.push(child);
    const out: Buffer[] = [];
    child.stdout?.on('data', (c: Buffer) => out.push(c));
    child.stdin?.write('examlab-probe 1 300\n1\tprocs\n'); // and stdin stays open
    const code = await new Promise((resolve) => child.on('close', resolve));
    child.stdin?.destroy();
    const message = 'line 3: the input did not end before the deadline';
    expect(code).toBe(2);
    expect(Buffer.concat(out).toString()).toBe(`0\terr\t${message.length}\n${message}\n`);
  });
});

/* ---------- hardening ---------- */

describe('hardening', () => {
  test('random bytes and random request lines never crash the probe: each run answers in frame or refuses', async () => {
    const next = random(20240601);
    const pick = <T>(items: T[]): T => items[Math.floor(next() * items.length)] as T;
    const verbs = ['lstat', 'read', 'list', 'statfs', 'cgroup', 'procs', 'nope', ''];
    const args = ['/', dir, join(dir, 'fifo'), join(dir, 'sub'), '/proc/self/stat', '..', '', '0', '99999999999', '\r', 'x'.repeat(300), '\xff\xfe'];
    for (let run = 0; run < 60; run++) {
      let input: Buffer;
      if (run % 3 === 0) {
        input = Buffer.from(Array.from({ length: Math.floor(next() * 200) }, () => pick([9, 10, 0, 48, 49, 101, Math.floor(next() * 256)])));
        if (run % 2) input = Buffer.concat([Buffer.from('examlab-probe 1 3000\n'), input]);
      } else {
        const lines = ['examlab-probe 1 3000'];
        for (let i = 1; i < 2 + next() * 6; i++) lines.push([i, pick(verbs), ...Array.from({ length: Math.floor(next() * 4) }, () => pick(args))].join('\t'));
        input = Buffer.from(`${lines.join('\n')}\n`, 'latin1');
      }
      const exit = await runProbe(input);
      if (exit.code === 2) {
        expect(exit.stdout.toString('latin1')).toMatch(/^0\terr\t\d+\nline \d+: [^\n]+\n$/);
      } else {
        expect(exit.code).toBe(0);
        expect(() => parseRecords(exit.stdout)).not.toThrow();
      }
    }
  }, 30_000);

  test('the probe is not dumpable: a reader with its uid and capabilities but no CAP_SYS_PTRACE cannot reach its fds', async () => {
    // As root, both the probe and the reader lose CAP_SYS_PTRACE (a container's root has none), or the
    // reader would reach anything. The control: a dumpable process started the same way can be reached.
    // (/proc/PID/environ is no good witness: some kernels let such a root read it, dumpable or not.)
    const prefix = process.getuid?.() === 0 ? ['setpriv', '--inh-caps=-sys_ptrace', '--bounding-set=-sys_ptrace', '--'] : [];
    if (prefix.length && spawnSync('setpriv', ['--version']).status !== 0) throw new Error('setpriv (util-linux) is needed to run this test as root');
    const wrapped = (...command: string[]): [string, string[]] => {
      const [first = '', ...rest] = [...prefix, ...command];
      return [first, rest];
    };
    const readFd = (pid: number) => spawnSync(...wrapped('readlink', `/proc/${pid}/fd/0`));

    const control = spawn(...wrapped('sleep', '5'), { stdio: 'ignore' });
    children.push(control);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const controlRead = readFd(control.pid ?? 0);
    expect(controlRead.status).toBe(0);
    expect(controlRead.stdout.toString()).toBe('/dev/null\n');

    const marker = join(dir, 'probe-running');
    let probeRead: ReturnType<typeof spawnSync> | undefined;
    let poll: NodeJS.Timeout | undefined;
    const exit = await runProbe(`examlab-probe 1 10000\n1\trun\t3000\t/bin/sh\ttouch '${marker}'; sleep 1\n`, {
      prefix,
      started: (pid) => {
        // Once the command runs, the probe is well past its prctl: read while it waits.
        poll = setInterval(() => {
          if (!existsSync(marker) || probeRead) return;
          probeRead = readFd(pid);
        }, 20);
      },
    });
    clearInterval(poll);
    expect(exit.code).toBe(0);
    expect(probeRead?.status).toBe(1);
    expect(probeRead?.stdout.toString()).toBe('');
  });
});
