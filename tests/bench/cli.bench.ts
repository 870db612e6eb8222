import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { expect, test } from '@jest/globals';
import { PACKAGE_ROOT } from '../../src/daemon/config.js';

const run = promisify(execFile);

/**
 * How long the `examlab` command takes to answer when it has little to do:
 * `--help`, and `lab ls` on an empty data directory, each a new Node
 * process, as a shell runs it. Bare `node -e ''` is timed in the same rounds:
 * what is left above it is examlab's own start.
 */
const BIN = join(PACKAGE_ROOT, 'dist/cli/bin.js');
const LIMIT_MS = 200;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function timed(args: string[]): Promise<{ ms: number; stdout: string }> {
  const start = performance.now();
  const { stdout } = await run(process.execPath, args);
  return { ms: Math.round(performance.now() - start), stdout };
}

test('examlab --help and lab ls (empty data dir) answer within 200 ms', async () => {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run make build first`);
  const dir = mkdtempSync(join(tmpdir(), 'examlab-bench-cli-'));
  const data = join(dir, 'data');
  const rounds = 11;
  const commands = {
    node: ['-e', ''],
    help: [BIN, '--help'],
    labLs: [BIN, '--data', data, 'lab', 'ls'],
  };
  const ms: Record<keyof typeof commands, number[]> = { node: [], help: [], labLs: [] };
  try {
    // Once untimed: the files in the page cache, the store created.
    for (const args of Object.values(commands)) await timed(args);
    // Interleaved rounds, so every command sees the same machine load.
    for (let i = 0; i < rounds; i++) {
      for (const [name, args] of Object.entries(commands) as [keyof typeof commands, string[]][]) {
        const { ms: took, stdout } = await timed(args);
        if (name === 'help') expect(stdout).toMatch(/^Usage: examlab/);
        if (name === 'labLs') expect(stdout).toBe('no labs\n');
        ms[name].push(took);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const figures = {
    rounds,
    limitMs: LIMIT_MS,
    nodeMedianMs: median(ms.node),
    helpMedianMs: median(ms.help),
    labLsMedianMs: median(ms.labLs),
    nodeMs: ms.node,
    helpMs: ms.help,
    labLsMs: ms.labLs,
  };
  mkdirSync(join(PACKAGE_ROOT, 'build/bench'), { recursive: true });
  writeFileSync(join(PACKAGE_ROOT, 'build/bench/cli.json'), `${JSON.stringify(figures, null, 2)}\n`);
  process.stdout.write(`cli bench: ${JSON.stringify(figures)}\n`);
  expect(figures.helpMedianMs).toBeLessThan(LIMIT_MS);
  expect(figures.labLsMedianMs).toBeLessThan(LIMIT_MS);
}, 120_000);
