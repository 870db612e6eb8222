import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecOptions, MachineSession } from '../../../src/remote/index.js';
import { runSteps, StepError, type StepMachines } from '../../../src/labs/steps.js';
import type { Step } from '../../../src/scenario/index.js';

/** Upload steps: the file is read from the scenario's folder, and only from there. */
describe('upload steps', () => {
  let dir: string;
  const received: { command: string; stdin?: string | Buffer }[] = [];
  const machines: StepMachines = {
    open: async (): Promise<MachineSession> => ({
      exec: async (command: string, options: ExecOptions) => {
        received.push({ command, stdin: options.stdin });
        return { exitCode: 0, stdout: '', stderr: '', stdoutBytes: Buffer.alloc(0), truncated: false };
      },
      close() {},
    }),
    reboot: async () => '',
  };
  const upload = (path: string) => ({ machine: 'pc', upload: path, to: '/tmp/x', timeout: 10_000 }) as unknown as Step;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'examlab-steps-'));
    mkdirSync(join(dir, 'files'));
    writeFileSync(join(dir, 'files/a.txt'), 'the scenario\'s file');
    received.length = 0;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('a file of the scenario\'s folder is copied', async () => {
    await runSteps('setup', [upload('files/a.txt')], machines, dir);
    expect(received[0]?.stdin?.toString()).toBe('the scenario\'s file');
    expect(received[0]?.command).toContain("cat > '/tmp/x'");
  });

  test('a symbolic link that leads out of the folder is refused, and nothing is sent', async () => {
    symlinkSync('/etc/hostname', join(dir, 'files/host'));
    await expect(runSteps('setup', [upload('files/host')], machines, dir)).rejects.toThrow(new StepError('upload files/host leads outside the scenario\'s folder (to /etc/hostname)'));
    expect(received).toEqual([]);
  });
});
