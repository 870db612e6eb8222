import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ScenarioLibrary } from '../../../src/scenario/index.js';

function folder(files: string[]): string {
  const root = mkdtempSync(join(tmpdir(), 'examlab-library-'));
  for (const f of files) {
    mkdirSync(join(root, f, '..'), { recursive: true });
    writeFileSync(join(root, f), 'apiVersion: examlab/v1\n');
  }
  return root;
}

describe('the scenario library', () => {
  test('a scenario is NAME.yaml at the top or NAME/NAME.yaml; other files are not scenarios', () => {
    const own = folder(['broken-workstation.yaml', 'README.md', 'template/scenario.yaml']);
    const trainer = folder(['intranet/intranet.yaml', 'intranet/images/poste/image.yaml', 'intranet/files/index.yaml', 'brouillon.yml', 'dns.yaml']);
    const library = new ScenarioLibrary([own, trainer, join(trainer, 'absent')]);
    expect(library.list()).toEqual([
      { name: 'broken-workstation', file: join(own, 'broken-workstation.yaml') },
      { name: 'dns', file: join(trainer, 'dns.yaml') },
      { name: 'intranet', file: join(trainer, 'intranet', 'intranet.yaml') },
    ]);
    expect(library.fileOf('intranet')).toBe(join(trainer, 'intranet', 'intranet.yaml'));
    expect(library.fileOf('template')).toBeUndefined();
  });

  test('one name in two folders is refused, naming both files', () => {
    const a = folder(['dns.yaml']);
    const b = folder(['dns/dns.yaml']);
    expect(() => new ScenarioLibrary([a, b]).list()).toThrow(`two scenarios are named "dns": ${join(a, 'dns.yaml')} and ${join(b, 'dns', 'dns.yaml')}; rename one`);
    // The same folder given twice is one folder.
    expect(new ScenarioLibrary([a, `${a}/`]).names()).toEqual(['dns']);
  });
});
