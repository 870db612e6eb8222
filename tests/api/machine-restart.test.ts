import { afterAll, beforeAll, expect, test } from '@jest/globals';
import Dockerode from 'dockerode';
import { api, examObjects, OPERATOR, sshExec, startedExam, startTestDaemon, waitFor, type CandidateView, type TestDaemon } from './helpers.js';
import { SMALL_SCENARIO } from './scenarios.js';

const docker = new Dockerode();
let d: TestDaemon;
let examId: string;
let tokens: Record<string, string>;

beforeAll(async () => {
  d = await startTestDaemon({ engineCheck: '1s' });
  ({ examId, tokens } = await startedExam(d.url, { scenarioYaml: SMALL_SCENARIO.replace('image: base', 'image: systemd'), candidates: [{ id: 'alice', name: 'Alice' }] }));
}, 240_000);

afterAll(() => d?.close(), 120_000);

/**
 * A technician reboots the machine they repaired. In a container, systemd
 * then exits and the machine stops: the daemon starts it again by itself
 * (as a PC comes back from a reboot), with the candidate's files, and gives
 * back the time it was down.
 */
test('a candidate who reboots their machine gets it back by itself, with their files, and the time it was down', async () => {
  const op = api(d.url, OPERATOR);
  const candidate = async () => (await op.get(`/api/exams/${examId}/candidates/alice`)).body as CandidateView;
  const sudo = (await api(d.url, tokens.alice).get('/api/me')).body.access.sudoPassword as string;
  const before = await candidate();
  const asked = Date.now();
  // The session ends with the machine: its end is no error of the test.
  const rebooted = await sshExec(d.sshPort, 'alice', tokens.alice as string, `echo travail > ~/travail && echo '${sudo}' | sudo -S -p '' systemctl reboot`).catch((err: Error) => ({ code: -1, stdout: '', stderr: err.message }));
  expect(rebooted.stderr).not.toMatch(/sudo|systemd|Failed/);
  const restart = await waitFor(
    'the machine started again',
    async () => ((await op.get(`/api/audit?exam=${examId}`)).body.records as { action: string; detail: { machines: string[]; seconds: number; compensated: boolean } }[]).find((r) => r.action === 'lab.restart'),
    (r) => r !== undefined,
    60_000,
  );
  expect(restart?.detail).toMatchObject({ machines: ['pc'], compensated: true });
  // It did stop (systemd exited on the reboot), after the candidate asked, and runs again.
  const [container] = (await examObjects(examId)).containers;
  const state = (await docker.getContainer(container?.id as string).inspect()).State;
  expect(state.Running).toBe(true);
  expect(Date.parse(state.FinishedAt)).toBeGreaterThan(asked);
  const downMs = Date.parse(state.StartedAt) - Date.parse(state.FinishedAt);
  expect(downMs).toBeGreaterThan(0);
  const after = await candidate();
  const given = Date.parse(after.deadline) - Date.parse(before.deadline);
  // At least the time the machine was down; at most the time since the candidate asked, and the one look of the watch (1 s) before.
  expect(given).toBeGreaterThanOrEqual(downMs - 100);
  expect(given).toBeLessThanOrEqual(Date.now() - asked + 2000);
  expect(after.extensionMs - before.extensionMs).toBe(given);
  const work = await waitFor('alice\'s machine to answer again', () => sshExec(d.sshPort, 'alice', tokens.alice as string, 'cat ~/travail').catch((err: Error) => ({ code: -1, stdout: err.message, stderr: '' })), (r) => r.code === 0, 60_000);
  expect(work.stdout).toBe('travail\n');
  // The machine is graded as it now stands.
  const run = await op.post(`/api/exams/${examId}/candidates/alice/grade`);
  expect(run.status).toBe(200);
  expect(run.body.results.map((r: { checkId: string; status: string }) => [r.checkId, r.status])).toEqual([
    ['etat', 'fail'],
    ['sshd', 'pass'],
  ]);
}, 240_000);
