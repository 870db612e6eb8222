import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { PACKAGE_ROOT } from '../../src/daemon/config.js';
import { newScenarioFolder } from '../../src/scenario/index.js';
import { api, examObjects, OPERATOR, startTestDaemon, waitFor, type TestDaemon } from './helpers.js';

/**
 * A trainer's scenario, in a folder of their own outside examlab's
 * checkout, with an image of its own beside it: offered by the daemon
 * (`scenarioFolders`), run as an exam on the real engine.
 */
describe("an exam from a trainer's folder", () => {
  const formations = mkdtempSync(join(tmpdir(), 'examlab-formations-'));
  let d: TestDaemon;
  let op: ReturnType<typeof api>;

  beforeAll(async () => {
    newScenarioFolder(join(PACKAGE_ROOT, 'scenarios', 'template'), join(formations, 'intranet-accueil'));
    d = await startTestDaemon({ scenarioFolders: [formations] });
    op = api(d.url, OPERATOR);
  }, 180_000);
  afterAll(async () => {
    await d?.close();
    rmSync(formations, { recursive: true, force: true });
  }, 180_000);

  test('is offered beside the library, and its labs run the image of its folder', async () => {
    const names = (await op.get('/api/scenarios')).body.scenarios as string[];
    expect(names).toEqual(expect.arrayContaining(['broken-workstation', 'intranet-accueil']));
    expect(names).not.toContain('template');

    const created = await op.post('/api/exams').send({ scenario: 'intranet-accueil', candidates: [{ id: 'alice', name: 'Alice' }, { id: 'bruno', name: 'Bruno' }], start: 'now' });
    expect(created.status).toBe(201);
    const examId = created.body.exam.id as string;
    await waitFor('both labs offered', async () => (await op.get(`/api/exams/${examId}`)).body, (e) => e.progress.byPhase.active === 2, 300_000);

    const docker = new Docker();
    const { containers } = await examObjects(examId);
    const images = await Promise.all(containers.map(async (c) => (await docker.getContainer(c.id).inspect()).Config.Image));
    expect(images.filter((i) => i.startsWith('examlab/poste-accueil:'))).toHaveLength(2);
    // What the folder's image brings is there.
    const pc = containers.find((_, i) => images[i]?.startsWith('examlab/poste-accueil:'));
    const motd = await docker.getContainer(pc?.id as string).exec({ Cmd: ['cat', '/etc/motd'], AttachStdout: true });
    const out = await new Promise<string>((resolve, reject) => {
      motd.start({}, (err, stream) => {
        if (err || !stream) return reject(err ?? new Error('no stream'));
        let text = '';
        stream.on('data', (b: Buffer) => (text += b.toString('utf8')));
        stream.on('end', () => resolve(text));
      });
    });
    expect(out).toContain("Poste d'accueil");

    const ended = await op.post(`/api/exams/${examId}/end`);
    expect(ended.status).toBe(202);
    const results = await waitFor('graded', async () => (await op.get(`/api/exams/${examId}/results`)).body, (r) => r.candidates?.length === 2 && r.candidates.every((c: { runId?: string }) => c.runId), 120_000);
    // Broken as built: neither the web server nor the page passes.
    for (const r of results.candidates) expect(r.auto.points).toBe(0);
  }, 420_000);
});
