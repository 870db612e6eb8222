import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from 'node:http';
import { dockerConnection } from '../../../src/providers/docker/index.js';
import { generateKeyPair } from '../../../src/remote/index.js';
import { InputError } from '../../../src/util/errors.js';

/** How a centre names a Docker engine, and what is refused before any connection. */
describe('Docker engine addresses', () => {
  const dir = mkdtempSync(join(tmpdir(), 'examlab-engine-'));
  for (const f of ['ca.pem', 'cert.pem', 'key.pem', 'id_ed25519']) writeFileSync(join(dir, f), `${f}\n`);
  const tls = { ca: join(dir, 'ca.pem'), cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
  const hostKey = generateKeyPair('root@salle-c').publicKey;

  test('this host\'s socket is local; TLS and SSH engines are not', () => {
    expect(dockerConnection({ url: 'unix:///var/run/docker.sock' })).toMatchObject({ local: true, options: { socketPath: '/var/run/docker.sock' } });
    expect(dockerConnection({ url: 'tcp://salle-b:2376', tls })).toMatchObject({ local: false, label: 'tcp://salle-b:2376', options: { protocol: 'https', host: 'salle-b', port: 2376, ca: 'ca.pem\n', cert: 'cert.pem\n', key: 'key.pem\n' } });
    // Over SSH, requests go through an agent of examlab's (one kept connection; the host key pinned: see host-connection.test.ts).
    const ssh = dockerConnection({ url: 'ssh://admin@salle-c:2222', sshKey: join(dir, 'id_ed25519'), sshHostKey: hostKey });
    expect(ssh).toMatchObject({ local: false, label: 'ssh://admin@salle-c:2222', options: { protocol: 'http', host: 'salle-c', port: 2222 } });
    expect((ssh.options as { agent?: unknown }).agent).toBeInstanceOf(Agent);
  });

  test.each([
    [{ url: 'tcp://salle-b:2375' }, /needs TLS client certificates/],
    [{ url: 'ssh://root@salle-c' }, /needs sshKey/],
    [{ url: 'ssh://root@salle-c', sshKey: join(dir, 'id_ed25519') }, /needs sshHostKey/],
    [{ url: 'ssh://root@salle-c', sshKey: join(dir, 'id_ed25519'), sshHostKey: 'ssh-ed25519 bm90IGEga2V5' }, /hosts\[1\]\.docker\.sshHostKey is not a public key line/],
    [{ url: 'tcp://salle-b:2376', tls: { ...tls, key: join(dir, 'missing.pem') } }, /cannot read the client key .*missing\.pem/],
    [{ url: 'http://salle-b' }, /unknown engine address scheme http:/],
    [{ url: 'salle-b' }, /not an engine address/],
  ])('%j is refused, saying why', (address, message) => {
    expect(() => dockerConnection(address, 'hosts[1].docker')).toThrow(InputError);
    expect(() => dockerConnection(address, 'hosts[1].docker')).toThrow(message);
  });
});
