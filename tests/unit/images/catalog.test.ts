import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageCatalog, type CatalogImage } from '../../../src/images/catalog.js';
import { ImageService } from '../../../src/images/image-service.js';

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

describe('images beside a scenario', () => {
  const trainerFolder = (images: Record<string, string>) => {
    const dir = mkdtempSync(join(tmpdir(), 'examlab-trainer-'));
    for (const [name, yaml] of Object.entries(images)) {
      mkdirSync(join(dir, 'images', name), { recursive: true });
      writeFileSync(join(dir, 'images', name, 'image.yaml'), yaml);
      writeFileSync(join(dir, 'images', name, 'Dockerfile'), 'ARG BASE\nFROM ${BASE}\n');
    }
    return dir;
  };

  test('join examlab\'s own, may build on them, and may not take their names', async () => {
    const root = catalogDir();
    const folder = trainerFolder({ kiosque: 'description: k\nfrom: workstation\n' });
    const catalog = await ImageCatalog.load(root, [join(folder, 'images')]);
    expect(catalog.names().sort()).toEqual(['base', 'kiosque', 'systemd', 'workstation']);
    expect(catalog.lineage('kiosque').map((i) => i.name)).toEqual(['base', 'systemd', 'workstation', 'kiosque']);
    expect(catalog.get('kiosque').runtime.systemd).toBe(true);

    const clash = trainerFolder({ systemd: 'description: mine\n' });
    await expect(ImageCatalog.load(root, [join(clash, 'images')])).rejects.toThrow(`image "systemd" of ${join(clash, 'images', 'systemd')} has the name of ${join(root, 'systemd')}: give it a name of its own`);
    const broken = trainerFolder({ kiosque: 'description: [unclosed\n' });
    await expect(ImageCatalog.load(root, [join(broken, 'images')])).rejects.toThrow(`${join(broken, 'images', 'kiosque', 'image.yaml')}: not valid YAML`);
  });

  test('the image service sees a scenario folder\'s images only for scenarios of that folder', async () => {
    const root = catalogDir();
    const folder = trainerFolder({ kiosque: 'description: k\nfrom: base\n' });
    const built: string[] = [];
    const builder = { ensure: async (image: CatalogImage) => (built.push(image.tag), { ref: image.tag, systemd: false, capabilities: [], bootable: false }), isBuilt: async () => false };
    const service = new ImageService(root, (r, extra) => ImageCatalog.load(r, extra), { docker: async () => builder });
    expect(Object.keys(await service.providersByImage()).sort()).toEqual(['base', 'systemd', 'workstation']);
    expect(Object.keys(await service.providersByImage(folder)).sort()).toEqual(['base', 'kiosque', 'systemd', 'workstation']);
    // A scenario folder without images/ sees examlab's only.
    expect(Object.keys(await service.providersByImage(mkdtempSync(join(tmpdir(), 'examlab-plain-')))).sort()).toEqual(['base', 'systemd', 'workstation']);
    await expect(service.ensure('kiosque')).rejects.toThrow('unknown image "kiosque"');
    expect((await service.ensure('kiosque', { scenarioDir: folder })).ref).toMatch(/^examlab\/kiosque:[0-9a-f]{12}$/);
    expect(built).toEqual([(await service.catalog(folder)).get('kiosque').tag]);
  });
});
