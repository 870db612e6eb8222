import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { expect, test } from '@jest/globals';
import Dockerode from 'dockerode';
import { PACKAGE_ROOT } from '../../src/daemon/config.js';
import { dockerConnection } from '../../src/providers/docker/index.js';
import { api, OPERATOR, startedExam, startTestDaemon } from '../api/helpers.js';
import { SMALL_SCENARIO } from '../api/scenarios.js';
import { startLabHosts, type LabHost } from '../hosts/lab-hosts.js';

const CANDIDATES = Number(process.env.CANDIDATES ?? 30);

/** One exam of CANDIDATES candidates through the daemon, from creation to every lab offered, then graded. */
async function room(settings: Record<string, unknown>): Promise<{ offeredS: number; gradedS: number }> {
  const d = await startTestDaemon({ provisioning: { concurrency: 12, attempts: 3, retryDelay: '1s' }, ...settings });
  try {
    const started = Date.now();
    const { examId } = await startedExam(d.url, { scenarioYaml: SMALL_SCENARIO, candidates: Array.from({ length: CANDIDATES }, (_, i) => ({ id: `c${i + 1}`, name: `Candidat ${i + 1}` })) }, 1_500_000);
    const offeredS = (Date.now() - started) / 1000;
    const ending = Date.now();
    const op = api(d.url, OPERATOR);
    expect((await op.post(`/api/exams/${examId}/end`)).status).toBe(202);
    for (;;) {
      const exam = (await op.get(`/api/exams/${examId}`)).body;
      if (exam.status === 'ended') break;
      if (Date.now() - ending > 900_000) throw new Error('the exam was not graded within 15 minutes');
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    return { offeredS, gradedS: (Date.now() - ending) / 1000 };
  } finally {
    await d.close();
  }
}

/**
 * The same exam on this host's engine, then spread over two lab hosts
 * (Docker engines in containers of this host, one over TLS, one over SSH),
 * side by side in one run. On one machine the two hosts share its cores:
 * the figure is the cost of the remote path (image shipping, the engines'
 * APIs over TLS and SSH, their storage), not the gain of a second server.
 * Figures: build/bench/hosts.json.
 */
test(`a ${CANDIDATES}-candidate exam on one engine and on two lab hosts`, async () => {
  const hosts = await startLabHosts(2, { name: 'bench-hosts' });
  try {
    const [a, b] = hosts.hosts as [LabHost, LabHost];
    const local = await room({});
    const spread = await room({
      hosts: [
        { name: 'a', docker: { url: a.docker.tcp, tls: a.docker.certDir } },
        { name: 'b', docker: { url: b.docker.ssh, sshKey: b.docker.sshPrivateKeyFile, sshHostKey: b.docker.sshHostKey } },
      ],
    });
    const rows = [
      { where: 'this host\'s engine', ...local, loadavg1: Math.round((loadavg()[0] as number) * 10) / 10 },
      { where: 'two lab hosts (TLS + SSH), images shipped to each', ...spread, loadavg1: Math.round((loadavg()[0] as number) * 10) / 10 },
    ];
    mkdirSync(join(PACKAGE_ROOT, 'build/bench'), { recursive: true });
    writeFileSync(join(PACKAGE_ROOT, 'build/bench/hosts.json'), `${JSON.stringify({ candidates: CANDIDATES, rows }, null, 2)}\n`);
    console.log(rows.map((r) => `${r.where}: ${CANDIDATES} labs offered in ${r.offeredS} s, graded in ${r.gradedS} s (load ${r.loadavg1})`).join('\n'));
  } finally {
    await hosts.close();
  }
});

/**
 * What one request to a lab host's engine costs by transport, side by side
 * in one run: TLS, SSH through examlab's kept connection (the default), and
 * SSH as the Docker client library does it alone (a connection, with its
 * handshake, per request). REQUESTS requests one after the other, then the
 * same number 8 at a time. Figures: build/bench/engine-transport.json.
 */
test('one engine request over TLS, over a kept SSH connection, over an SSH connection per request', async () => {
  const REQUESTS = 30;
  const hosts = await startLabHosts(1, { name: 'bench-transport' });
  try {
    const [h] = hosts.hosts as [LabHost];
    const privateKey = readFileSync(h.docker.sshPrivateKeyFile, 'utf8');
    const url = new URL(h.docker.ssh);
    const engines: Record<string, Dockerode> = {
      'TLS (tcp://, client certificates)': new Dockerode(dockerConnection({ url: h.docker.tcp, tls: { ca: join(h.docker.certDir, 'ca.pem'), cert: join(h.docker.certDir, 'cert.pem'), key: join(h.docker.certDir, 'key.pem') } }).options),
      'SSH, one kept connection (examlab)': new Dockerode(dockerConnection({ url: h.docker.ssh, sshKey: h.docker.sshPrivateKeyFile, sshHostKey: h.docker.sshHostKey }).options),
      'SSH, a connection per request (the Docker library alone)': new Dockerode({ protocol: 'ssh', host: url.hostname, port: 22, username: 'root', sshOptions: { privateKey } } as Dockerode.DockerOptions),
    };
    const rows = [];
    for (const [transport, docker] of Object.entries(engines)) {
      await docker.version(); // the first opens what is kept
      let started = Date.now();
      for (let i = 0; i < REQUESTS; i++) await docker.version();
      const oneByOneMs = (Date.now() - started) / REQUESTS;
      started = Date.now();
      for (let i = 0; i < REQUESTS; i += 8) await Promise.all(Array.from({ length: Math.min(8, REQUESTS - i) }, () => docker.version()));
      const eightAtOnceMs = (Date.now() - started) / REQUESTS;
      rows.push({ transport, oneByOneMs: Math.round(oneByOneMs), eightAtOnceMs: Math.round(eightAtOnceMs), loadavg1: Math.round((loadavg()[0] as number) * 10) / 10 });
    }
    mkdirSync(join(PACKAGE_ROOT, 'build/bench'), { recursive: true });
    writeFileSync(join(PACKAGE_ROOT, 'build/bench/engine-transport.json'), `${JSON.stringify({ requests: REQUESTS, rows }, null, 2)}\n`);
    console.log(rows.map((r) => `${r.transport}: ${r.oneByOneMs} ms a request one by one, ${r.eightAtOnceMs} ms a request 8 at a time (load ${r.loadavg1})`).join('\n'));
    // The kept connection must beat a handshake per request by a wide margin, or it is not doing its job.
    expect(rows[1]?.oneByOneMs).toBeLessThan((rows[2]?.oneByOneMs as number) / 2);
  } finally {
    await hosts.close();
  }
}, 600_000);
