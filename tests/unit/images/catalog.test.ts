import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageCatalog } from '../../../src/images/catalog.js';

function catalogDir(): string {
  const root = mkdtempSync(join(tmpdir(), 'examlab-images-'));
  const image = (name: string, yaml: string, files: Record<string, string> = {}) => {
    mkdirSync(join(root, name));
    writeFileSync(join(root, name, 'image.yaml'), yaml);
    for (const [f, c] of Object.entries(files)) writeFileSync(join(root, name, f), c);
  };
  image('base', 'description: b\ndebootstrap: { include: [openssh-server] }\nruntime: { capabilities: [CHOWN, SETUID] }\n', { Dockerfile: 'FROM x\n' });
  image('systemd', 'description: s\nfrom: base\nruntime: { systemd: true }\n', { Dockerfile: 'FROM y\n' });
  image('workstation', 'description: w\nfrom: systemd\nruntime: { capabilities: [NET_RAW] }\n', { Dockerfile: 'FROM z\n' });
  mkdirSync(join(root, 'toolbox')); // not an image: no image.yaml
  return root;
}

describe('image catalog', () => {
  test('lineage, inherited runtime needs and tags that carry a content hash', async () => {
    const catalog = await ImageCatalog.load(catalogDir());
    expect(catalog.names().sort()).toEqual(['base', 'systemd', 'workstation']);
    expect(catalog.lineage('workstation').map((i) => i.name)).toEqual(['base', 'systemd', 'workstation']);
    const ws = catalog.get('workstation');
    expect(ws.runtime).toEqual({ systemd: true, capabilities: ['CHOWN', 'NET_RAW', 'SETUID'] });
    expect(ws.tag).toMatch(/^examlab\/workstation:[0-9a-f]{12}$/);
  });

  test('changing a file of an image changes its tag and its descendants\', not its parent\'s', async () => {
    const root = catalogDir();
    const before = await ImageCatalog.load(root);
    writeFileSync(join(root, 'systemd', 'Dockerfile'), 'FROM y\nRUN true\n');
    const after = await ImageCatalog.load(root);
    expect(after.get('base').tag).toBe(before.get('base').tag);
    expect(after.get('systemd').tag).not.toBe(before.get('systemd').tag);
    expect(after.get('workstation').tag).not.toBe(before.get('workstation').tag);
  });

  test('unknown images and parents are named', async () => {
    const catalog = await ImageCatalog.load(catalogDir());
    expect(() => catalog.get('windows')).toThrow('unknown image "windows"; known: base, systemd, workstation');
    const root = catalogDir();
    writeFileSync(join(root, 'systemd', 'image.yaml'), 'description: s\nfrom: debian\n');
    await expect(ImageCatalog.load(root)).rejects.toThrow('image "systemd" builds on unknown image "debian"');
  });
});
