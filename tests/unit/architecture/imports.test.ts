import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';

/**
 * The import rule (.dependency-cruiser.cjs): the real source keeps it, and a
 * tree that breaks it in each way is refused, rule by rule.
 */
const root = resolve('.');
const depcruise = join(root, 'node_modules/.bin/depcruise');
const config = join(root, '.dependency-cruiser.cjs');
const run = promisify(execFile);

interface Violation {
  rule: { name: string };
  from: string;
  to: string;
}

async function cruise(cwd: string): Promise<Violation[]> {
  const { stdout } = await run(depcruise, ['src', '--config', config, '--output-type', 'json'], { cwd, maxBuffer: 64 * 1024 * 1024 }).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }));
  return (JSON.parse(stdout) as { summary: { violations: Violation[] } }).summary.violations;
}

test('the source keeps the import rule', async () => {
  expect(await cruise(root)).toEqual([]);
}, 60_000);

describe('a tree that breaks the rule', () => {
  let dir: string;
  const files: Record<string, string> = {
    'tsconfig.json': JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true } }),
    'package.json': JSON.stringify({ type: 'module' }),
    // util reaches up into a service
    'src/util/clock.ts': "import { lab } from '../labs/index.js';\nexport const clock = lab;\n",
    'src/labs/index.ts': "export { lab } from './lab.js';\n",
    // a service names an engine
    'src/labs/lab.ts': "import { docker } from '../providers/docker/index.js';\nexport const lab = docker;\n",
    'src/providers/docker/index.ts': "import { vm } from '../libvirt/index.js';\nexport const docker = vm;\n",
    // a provider imports another
    'src/providers/libvirt/index.ts': 'export const vm = 1;\n',
    // a face reaches a store; and an inner file of another concept
    'src/http/route.ts': "import { store } from '../exams/exam-store.js';\nexport const route = store;\n",
    'src/exams/exam-store.ts': 'export const store = 1;\n',
    // a command declaration loads a concept up front; the composition root reaches an inner file
    'src/cli/commands/lab.ts': "import { lab } from '../../labs/index.js';\nexport const command = lab;\n",
    'src/daemon/app.ts': "import { lab } from '../labs/lab.js';\nexport const app = lab;\n",
    // a cycle
    'src/audit/a.ts': "import { b } from './b.js';\nexport const a = b;\n",
    'src/audit/b.ts': "import { a } from './a.js';\nexport const b = () => a;\n",
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'examlab-imports-'));
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, name)), { recursive: true });
      writeFileSync(join(dir, name), text);
    }
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('each violation is named with its rule', async () => {
    const found = (await cruise(dir)).map((v) => `${v.rule.name}: ${v.from} → ${v.to}`);
    expect(found).toEqual(
      expect.arrayContaining([
        'layer-util: src/util/clock.ts → src/labs/index.ts',
        'core-names-no-provider: src/labs/lab.ts → src/providers/docker/index.ts',
        'providers-apart: src/providers/docker/index.ts → src/providers/libvirt/index.ts',
        'faces-use-services: src/http/route.ts → src/exams/exam-store.ts',
        'front-door: src/http/route.ts → src/exams/exam-store.ts',
        'cli-start-light: src/cli/commands/lab.ts → src/labs/index.ts',
        'front-door-root: src/daemon/app.ts → src/labs/lab.ts',
        'no-cycle: src/audit/a.ts → src/audit/b.ts',
      ]),
    );
  }, 60_000);
});
