import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeDirs } from '../../../src/util/dirs.js';
import { EnvironmentError } from '../../../src/util/errors.js';

describe('making a data directory', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'examlab-dirs-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('makes every missing level, private, and accepts one that exists', () => {
    makeDirs(join(dir, 'a/b/c'));
    expect(statSync(join(dir, 'a/b/c')).mode & 0o777).toBe(0o700);
    expect(() => makeDirs(join(dir, 'a/b'))).not.toThrow();
  });

  test('a place where no directory can be made fails at once, naming it and why', () => {
    writeFileSync(join(dir, 'file'), '');
    expect(() => makeDirs(join(dir, 'file/sub'))).toThrow(new EnvironmentError(`cannot make the directory ${join(dir, 'file/sub')}: ${join(dir, 'file')} is not a directory`));
    // procfs refuses new entries with ENOENT, which sends Node's recursive mkdir into an endless loop.
    expect(() => makeDirs('/proc/examlab-nope/data')).toThrow(/cannot make the directory \/proc\/examlab-nope: .*ENOENT/);
  });
});
