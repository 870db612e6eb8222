import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import Dockerode from 'dockerode';
import { withTimeout } from '../../src/util/retry.js';
import { ensureTestImage } from '../hosts/lab-host-image.js';
import { DIR_LABEL, DIR_PREFIX, LAB_HOST_LABEL, OWNER_FILE, OWNER_LABEL, ownerOf, removeLeftoverLabHosts, startLabHosts, type LabHost, type LabHosts, type Transport } from '../hosts/lab-hosts.js';
import { createCertificateAuthority, createSshKeyPair, issueClientCertificate } from '../hosts/pki.js';

/**
 * The lab host fixture: two Docker engines on machines of their own, driven
 * through dockerode over TLS (client certificates) and over SSH, as examlab
 * will drive a remote engine. What it does and what it refuses, how long
 * its image loads and container starts take on each transport.
 */

const local = new Dockerode();
const labels = { 'examlab.test': 'lab-hosts-test' };
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const say = (line: string) => process.stdout.write(`lab hosts: ${line}\n`);

/** Follows a progress stream (image load) to its end; its error, if any, is thrown. */
function follow(docker: Dockerode, stream: NodeJS.ReadableStream): Promise<{ stream?: string; error?: string }[]> {
  return new Promise((resolve, reject) =>
    docker.modem.followProgress(stream, (err: Error | null, output: { stream?: string; error?: string }[]) => {
      const failure = err?.message ?? output.find((o) => o.error)?.error;
      if (failure) reject(new Error(failure));
      else resolve(output);
    }),
  );
}

/** Runs `cmd` in a container with `input` on its stdin (hijacked connection), to the end of its output. */
async function execWithInput(container: Dockerode.Container, cmd: string[], input: string): Promise<{ exitCode: number | null; stdout: string; stderr: string }> {
  const exec = await container.exec({ Cmd: cmd, AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: false });
  const stream = await exec.start({ hijack: true, stdin: true });
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const text = { stdout: '', stderr: '' };
  stdout.on('data', (d: Buffer) => (text.stdout += d.toString()));
  stderr.on('data', (d: Buffer) => (text.stderr += d.toString()));
  container.modem.demuxStream(stream, stdout, stderr);
  const ended = new Promise<void>((resolve, reject) => {
    stream.once('end', resolve);
    stream.once('close', resolve);
    stream.once('error', reject);
  });
  stream.end(input);
  await withTimeout(ended, 30_000, `the output of ${cmd.join(' ')}`);
  return { exitCode: (await exec.inspect()).ExitCode, ...text };
}

/** The error a ping gets, or undefined when it answers. */
async function pingError(docker: Dockerode, timeoutMs = 10_000): Promise<string | undefined> {
  try {
    await withTimeout(docker.ping(), timeoutMs, 'ping');
    return undefined;
  } catch (err) {
    return err instanceof Error ? `${(err as { code?: string }).code ?? ''} ${err.message}`.trim() : String(err);
  }
}

describe('lab hosts: Docker engines on machines of their own, over TLS and SSH', () => {
  let lab: LabHosts;
  let baseTag: string;

  beforeAll(async () => {
    const started = Date.now();
    // Built once per definition (a minute or two the first time): not counted in the start figure below.
    [baseTag] = await Promise.all([ensureTestImage(local, 'base'), ensureTestImage(local, 'lab-host')]);
    const hostsStarted = Date.now();
    lab = await startLabHosts(2);
    say(`2 hosts started in parallel, both engines answering over TLS and SSH, in ${seconds(Date.now() - hostsStarted)} (images checked in ${seconds(hostsStarted - started)})`);
  }, 900_000);

  afterAll(async () => {
    if (!lab) return;
    const owner = await ownerOf(process.pid);
    await lab.close();
    // Nothing of this run is left.
    const filters = { label: [`${OWNER_LABEL}=${owner}`] };
    const [containers, networks, volumes] = await Promise.all([local.listContainers({ all: true, filters }), local.listNetworks({ filters }), local.listVolumes({ filters })]);
    expect({ containers: containers.length, networks: networks.length, volumes: volumes.Volumes?.length ?? 0, dir: existsSync(lab.dir) }).toEqual({ containers: 0, networks: 0, volumes: 0, dir: false });
  }, 120_000);

  const host = (i: number): LabHost => lab.hosts[i] as LabHost;

  test('each host has its address, its name, and the access a client needs', () => {
    expect(lab.hosts).toHaveLength(2);
    for (const h of lab.hosts) {
      expect(h.docker.tcp).toBe(`tcp://${h.ip}:2376`);
      expect(h.docker.ssh).toBe(`ssh://root@${h.ip}`);
      expect(h.docker.ca).toMatch(/^-----BEGIN CERTIFICATE-----/);
      expect(h.docker.key).toMatch(/PRIVATE KEY-----/);
      expect(h.docker.sshPrivateKey).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----/);
      expect(h.docker.sshHostKey).toMatch(/^ssh-ed25519 /);
    }
    expect(new Set(lab.hosts.map((h) => h.ip)).size).toBe(2);
  });

  test.each([
    ['tls', 0],
    ['ssh', 1],
  ] as [Transport, number][])(
    'over %s: ping, an image loaded from this engine, a container on an internal network, an exec with stdin',
    async (via, index) => {
      const h = host(index);
      const remote = h.dockerode(via);
      expect(String(await remote.ping())).toBe('OK');
      expect(((await remote.info()) as { Name: string }).Name).toBe(h.name);

      // docker save here, docker load there: one stream, never on disk.
      const loadStarted = Date.now();
      const output = await follow(remote, await remote.loadImage(await local.getImage(baseTag).get()));
      const loadMs = Date.now() - loadStarted;
      expect(output.map((o) => o.stream ?? '').join('')).toContain(`Loaded image: ${baseTag}`);
      expect((await remote.getImage(baseTag).inspect()).RepoTags).toContain(baseTag);

      await remote.createNetwork({ Name: 'lan', Driver: 'bridge', Internal: true, Labels: labels });
      const startStarted = Date.now();
      const container = await remote.createContainer({ name: 'pc', Hostname: 'pc', Image: baseTag, Labels: labels, HostConfig: { NetworkMode: 'lan' } });
      await container.start();
      const startMs = Date.now() - startStarted;
      const listed = await remote.listContainers({ filters: { label: ['examlab.test=lab-hosts-test'] } });
      expect(listed.map((c) => ({ name: c.Names[0], state: c.State }))).toEqual([{ name: '/pc', state: 'running' }]);
      expect((await container.inspect()).NetworkSettings.Networks.lan?.IPAddress).toMatch(/^\d+\.\d+\.\d+\.\d+$/);

      const execStarted = Date.now();
      const run = await execWithInput(container, ['sh', '-c', 'tr a-z A-Z; echo "on $(hostname)"; echo oops >&2'], 'bonjour depuis examlab\n');
      const execMs = Date.now() - execStarted;
      expect(run).toEqual({ exitCode: 0, stdout: 'BONJOUR DEPUIS EXAMLAB\non pc\n', stderr: 'oops\n' });

      // One more request, to see what a single call costs on this transport.
      const pingStarted = Date.now();
      await remote.ping();
      const pingMs = Date.now() - pingStarted;
      say(`over ${via}: ${baseTag} loaded in ${seconds(loadMs)}; container created and started in ${seconds(startMs)}; exec with stdin ${execMs} ms; ping ${pingMs} ms`);
    },
    150_000,
  );

  test('a client certificate from another authority is refused, and so is a client without one; the client refuses an engine it cannot verify', async () => {
    const h = host(0);
    const foreign = await createCertificateAuthority(join(lab.dir, 'foreign'), 'someone else');
    const stranger = await issueClientCertificate(foreign, join(lab.dir, 'foreign'), 'stranger');
    const base = { protocol: 'https' as const, host: h.ip, port: 2376, timeout: 10_000 };
    const withForeignCert = await pingError(new Dockerode({ ...base, ca: h.docker.ca, cert: stranger.cert, key: stranger.key }));
    const withoutCert = await pingError(new Dockerode({ ...base, ca: h.docker.ca }));
    const distrustful = await pingError(new Dockerode({ ...base, ca: foreign.cert, cert: h.docker.cert, key: h.docker.key }));
    say(`refused over TLS: foreign client certificate: "${withForeignCert}"; no certificate: "${withoutCert}"; engine not trusted: "${distrustful}"`);
    expect(withForeignCert).toMatch(/certificate|socket hang up|ECONNRESET/i);
    expect(withoutCert).toMatch(/certificate|socket hang up|ECONNRESET/i);
    expect(distrustful).toMatch(/self[- ]signed|unable to verify|UNABLE_TO_VERIFY/i);
    // The right certificate still works.
    expect(await pingError(h.dockerode('tls'))).toBeUndefined();
  }, 60_000);

  test('a wrong SSH key is refused, and so is a host whose key is not the one pinned', async () => {
    const h = host(1);
    const wrong = await createSshKeyPair(join(lab.dir, 'wrong-key'), 'wrong');
    const ssh = { protocol: 'ssh' as const, host: h.ip, port: 22, username: 'root' };
    const wrongKey = await pingError(new Dockerode({ ...ssh, sshOptions: { privateKey: wrong.privateKey, readyTimeout: 10_000 } }));
    const pinnedKey = Buffer.from(wrong.publicKey.split(' ')[1] as string, 'base64');
    const wrongHost = await pingError(new Dockerode({ ...ssh, sshOptions: { privateKey: h.docker.sshPrivateKey, readyTimeout: 10_000, hostVerifier: (key: Buffer) => key.equals(pinnedKey) } }));
    say(`refused over SSH: wrong key: "${wrongKey}"; host key not the pinned one: "${wrongHost}"`);
    expect(wrongKey).toMatch(/authentication methods failed/i);
    expect(wrongHost).toMatch(/host denied|verification failed/i);
    expect(await pingError(h.dockerode('ssh'))).toBeUndefined();
  }, 60_000);

  test('paused, a host answers nothing (connections hang); resumed, it answers at once', async () => {
    const h = host(1);
    await h.pause();
    try {
      const started = Date.now();
      expect(await h.answers('tls', 3_000)).toBe(false);
      expect(await h.answers('ssh', 3_000)).toBe(false);
      expect(Date.now() - started).toBeLessThan(8_000);
    } finally {
      await h.unpause();
    }
    expect(await h.answers('tls', 10_000)).toBe(true);
    expect(await h.answers('ssh', 10_000)).toBe(true);
  }, 60_000);

  test('stop() takes the machine down, engine and labs with it; start() brings it back on the same address, images kept', async () => {
    const h = host(0);
    const tls = h.dockerode('tls', { timeoutMs: 10_000 });
    const ssh = h.dockerode('ssh', { timeoutMs: 10_000 });

    const stopStarted = Date.now();
    await h.stop();
    const stopMs = Date.now() - stopStarted;
    const downStarted = Date.now();
    const [tlsDown, sshDown] = await Promise.all([pingError(tls), pingError(ssh)]);
    const downMs = Date.now() - downStarted;
    say(`stopped in ${seconds(stopMs)}; then a ping failed within ${seconds(downMs)}: over TLS "${tlsDown}", over SSH "${sshDown}"`);
    expect(tlsDown).toBeDefined();
    expect(sshDown).toBeDefined();
    expect(downMs).toBeLessThan(12_000);

    const startStarted = Date.now();
    await h.start();
    say(`started again, engine answering over TLS and SSH, in ${seconds(Date.now() - startStarted)}`);
    expect(await pingError(tls)).toBeUndefined();
    expect(await pingError(ssh)).toBeUndefined();
    // The lab container stopped with the machine; the image is still there and the container starts again.
    const pc = tls.getContainer('pc');
    expect((await pc.inspect()).State.Running).toBe(false);
    expect((await tls.getImage(baseTag).inspect()).RepoTags).toContain(baseTag);
    await pc.start();
    expect((await execWithInput(pc, ['cat'], 'still here\n')).stdout).toBe('still here\n');
  }, 120_000);

  test('what a killed run left (its owner gone) is removed by the next run; a live run is left alone', async () => {
    // A process that owned lab host objects, then was killed before its clean-up.
    const owner = spawn('sleep', ['60'], { stdio: 'ignore' });
    const deadOwner = await ownerOf(owner.pid as number);
    owner.kill('SIGKILL');
    await new Promise((resolve) => owner.once('exit', resolve));
    const dir = mkdtempSync(join(tmpdir(), DIR_PREFIX));
    // And a run killed before it made anything but its folder.
    const bareDir = mkdtempSync(join(tmpdir(), DIR_PREFIX));
    writeFileSync(join(bareDir, OWNER_FILE), deadOwner);
    const leftLabels = { [LAB_HOST_LABEL.key]: LAB_HOST_LABEL.value, [OWNER_LABEL]: deadOwner, [DIR_LABEL]: dir };
    const name = `lab-host-leftover-${process.pid}`;
    const network = await local.createNetwork({ Name: name, Internal: true, Labels: leftLabels });
    const volume = `${name}-engine`;
    await local.createVolume({ Name: volume, Labels: leftLabels });
    const container = await local.createContainer({ name, Image: baseTag, Labels: leftLabels, HostConfig: { NetworkMode: name, Mounts: [{ Type: 'volume', Source: volume, Target: '/var/lib/docker' }] } });
    await container.start();

    expect(await removeLeftoverLabHosts(local)).toBeGreaterThanOrEqual(5);
    const gone = async (inspect: () => Promise<unknown>) => inspect().then(() => false, (err: { statusCode?: number }) => err.statusCode === 404);
    expect([await gone(() => container.inspect()), await gone(() => network.inspect()), await gone(() => local.getVolume(volume).inspect()), existsSync(dir), existsSync(bareDir)]).toEqual([true, true, true, false, false]);
    // This run's hosts are still up.
    expect(await Promise.all(lab.hosts.map((h) => h.answers('tls', 10_000)))).toEqual([true, true]);
  }, 60_000);
});
