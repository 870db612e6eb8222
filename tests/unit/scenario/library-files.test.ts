import { dirname, join } from 'node:path';
import { PACKAGE_ROOT } from '../../../src/daemon/config.js';
import { ImageCatalog, ImageService } from '../../../src/images/index.js';
import { loadScenarioFile, ScenarioLibrary } from '../../../src/scenario/index.js';

/** Every scenario shipped (and the template `scenario new` copies) is valid against the images it can use. */
describe('the shipped scenarios', () => {
  const images = new ImageService(join(PACKAGE_ROOT, 'images'), (root, extra) => ImageCatalog.load(root, extra), {});
  const files = [...new ScenarioLibrary([join(PACKAGE_ROOT, 'scenarios')]).list().map((e) => e.file), join(PACKAGE_ROOT, 'scenarios', 'template', 'scenario.yaml')];

  test('include the library of the title and the template', () => {
    expect(files.map((f) => f.slice(PACKAGE_ROOT.length + 1))).toEqual(
      expect.arrayContaining([
        'scenarios/ad-join.yaml',
        'scenarios/ad-join-windows/ad-join-windows.yaml',
        'scenarios/backup-restore.yaml',
        'scenarios/broken-workstation.yaml',
        'scenarios/deploy-workstation.yaml',
        'scenarios/file-share-permissions.yaml',
        'scenarios/firewall-rules.yaml',
        'scenarios/network-services.yaml',
        'scenarios/router-and-vlans.yaml',
        'scenarios/workstation-onboarding.yaml',
        'scenarios/unbootable-workstation.yaml',
        'scenarios/vpn-misconfigured.yaml',
        'scenarios/template/scenario.yaml',
      ]),
    );
  });

  test.each(files.map((f) => [f.slice(PACKAGE_ROOT.length + 1), f]))('%s is valid', async (_name, file) => {
    const imageProviders = await images.providersByImage(dirname(file));
    const loaded = await loadScenarioFile(file, { knownImages: Object.keys(imageProviders), imageProviders });
    expect(loaded.scenario.instructions.fr).toBeTruthy();
    // Every point counts towards a competency of the title.
    expect(loaded.scenario.checks.filter((c) => c.points > 0 && !c.competency).map((c) => c.id)).toEqual([]);
  });
});
