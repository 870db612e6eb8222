import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageCatalog, type CatalogImage } from '../../../src/images/catalog.js';
import { ImageService, type BuildOptions } from '../../../src/images/image-service.js';

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

  test('a Docker image may carry VM disks: they are part of its tag; a VM image builds on a VM image only', async () => {
    const root = catalogDir();
    const image = (name: string, yaml: string) => {
      mkdirSync(join(root, name));
      writeFileSync(join(root, name, 'image.yaml'), yaml);
    };
    image('vm', 'description: v\nprovider: libvirt\ndebootstrap: { include: [linux-image-amd64] }\n');
    image('master', 'description: m\nprovider: libvirt\nfrom: vm\n');
    image('deployer', 'description: d\nfrom: systemd\nvmDisks: [master]\n');
    const before = await ImageCatalog.load(root);
    expect(before.get('deployer').vmDisks.map((d) => d.name)).toEqual(['master']);
    expect(before.lineage('master').map((i) => i.name)).toEqual(['vm', 'master']);
    writeFileSync(join(root, 'master', 'configure.sh'), 'true\n');
    const after = await ImageCatalog.load(root);
    expect(after.get('deployer').tag).not.toBe(before.get('deployer').tag);
    expect(after.get('systemd').tag).toBe(before.get('systemd').tag);

    writeFileSync(join(root, 'deployer', 'image.yaml'), 'description: d\nfrom: systemd\nvmDisks: [workstation]\n');
    await expect(ImageCatalog.load(root)).rejects.toThrow('image "deployer" carries "workstation" in vmDisks, which is not a VM image');
    writeFileSync(join(root, 'deployer', 'image.yaml'), 'description: d\nfrom: vm\n');
    await expect(ImageCatalog.load(root)).rejects.toThrow('image "deployer" (docker) builds on "vm", a libvirt image: an image builds on one of its own provider');
  });

  test('a build receives the disks its image carries from the VM images\' builder', async () => {
    const root = catalogDir();
    for (const [name, yaml] of [['master', 'description: m\nprovider: libvirt\ndebootstrap: {}\n'], ['deployer', 'description: d\nfrom: base\nvmDisks: [master]\n']]) {
      mkdirSync(join(root, name as string));
      writeFileSync(join(root, name as string, 'image.yaml'), yaml as string);
    }
    const exported: string[] = [];
    const docker = {
      ensure: async (image: CatalogImage, options?: BuildOptions) => {
        for (const disk of image.vmDisks) await options?.exportVmDisk?.(disk, `/ctx/${disk.name}.img.zst`);
        return { ref: image.tag, systemd: false, capabilities: [], bootable: false };
      },
      isBuilt: async () => false,
    };
    const libvirt = { ...docker, exportDisk: async (image: CatalogImage, dest: string) => void exported.push(`${image.name} -> ${dest}`) };
    const service = new ImageService(root, (r, extra) => ImageCatalog.load(r, extra), { docker: async () => docker, libvirt: async () => libvirt });
    await service.ensure('deployer');
    expect(exported).toEqual(['master -> /ctx/master.img.zst']);
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
