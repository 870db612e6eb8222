import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import Dockerode from 'dockerode';
import { execInContainer } from '../../src/providers/docker/exec.js';
import { connectOutcomes, connectScript, hostAddresses, hostConnects } from '../integration/helpers.js';
import { examObjects, startTestDaemon, startedExam, type TestDaemon } from './helpers.js';
import { SMALL_SCENARIO } from './scenarios.js';

describe('the daemon, seen from inside a lab as root', () => {
  let d: TestDaemon;
  let machine: Dockerode.Container;

  beforeAll(async () => {
    // Bound to every address, as `examlab serve` is by default.
    d = await startTestDaemon({ http: { host: '0.0.0.0', port: 0 }, ssh: { host: '0.0.0.0', port: 0 } });
    const { examId } = await startedExam(d.url, { scenarioYaml: SMALL_SCENARIO, candidates: [{ id: 'alice', name: 'Alice' }] });
    const [container] = (await examObjects(examId)).containers;
    machine = new Dockerode().getContainer(container?.id as string);
  }, 180_000);

  afterAll(async () => {
    await d?.close();
  }, 120_000);

  test('the API and the SSH gateway, listening on every address, cannot be reached from a lab at any address of the host', async () => {
    const ports = [d.started.http.port, d.sshPort];
    const addresses = hostAddresses();
    // Control: both answer the host itself at each of those addresses (IPv4: the lab has no IPv6).
    const v4 = addresses.filter((h) => h.includes('.'));
    const answered = await Promise.all(v4.flatMap((host) => ports.map(async (port) => `${host} ${port} ${await hostConnects(host, port)}`)));
    expect(answered.filter((a) => !a.endsWith('true'))).toEqual([]);
    const info = await machine.inspect();
    const network = Object.values(info.NetworkSettings.Networks)[0];
    const own = network?.IPAddress as string;
    expect(addresses).toContain(network?.Gateway);
    const targets = addresses.flatMap((host) => ports.map((port) => ({ host, port })));
    const run = await execInContainer(machine, { argv: ['bash', '-s'], stdin: connectScript([...targets, { host: own, port: 22 }]), timeoutMs: 30_000, maxOutputBytes: 1 << 20 });
    const outcomes = connectOutcomes(run.stdout.toString('utf8'));
    // Control: the same probe reaches the machine's own sshd.
    expect(outcomes.get(`${own} 22`)).toBe('reached');
    expect(outcomes.size).toBe(targets.length + 1);
    expect([...outcomes].filter(([, o]) => o === 'reached' || o === 'refused').map(([t]) => t)).toEqual([`${own} 22`]);
  }, 60_000);
});
