import { join } from 'node:path';
import type { Command } from 'commander';
import { errorMessage } from '../../util/errors.js';
import { appFor } from '../context.js';
import { connectionInfo, scoreReport } from '../output.js';
import { candidateKeyFile } from './lab.js';

export async function demo(program: Command, file: string | undefined): Promise<void> {
  const app = await appFor(program);
  const say = (line: string) => process.stdout.write(`${line}\n`);
  let labId: string | undefined;
  try {
    const loaded = await app.loadScenario(file ?? join(app.config.scenariosDir, 'broken-workstation.yaml'));
    say(`== ${loaded.scenario.title} (${loaded.scenario.id}, ${loaded.scenario.ccp})`);
    say('… provisioning the lab (machines, setup, faults)');
    const started = Date.now();
    const lab = await app.labs.up(loaded, { candidateId: 'demo' });
    labId = lab.id;
    say(`lab ${lab.id} ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    say('\n== How the candidate connects (from this host)');
    say(connectionInfo(lab, candidateKeyFile(app, lab)));
    say('\n== Grade of the broken lab, as handed to the candidate');
    const broken = await app.labs.grade(lab.id);
    say(scoreReport(broken.results, broken.score as NonNullable<typeof broken.score>));
    say('\n… applying the reference solution');
    await app.labs.applySolution(lab.id);
    say('\n== Grade after the reference solution');
    const solved = await app.labs.grade(lab.id);
    say(scoreReport(solved.results, solved.score as NonNullable<typeof solved.score>));
  } finally {
    if (labId) {
      await app.labs.destroy(labId).then(
        () => say(`\nlab ${labId} torn down`),
        (err) => process.stderr.write(`teardown of ${labId} failed: ${errorMessage(err)}\n`),
      );
    }
    app.close();
  }
}
