import { readFileSync } from 'node:fs';
import Dockerode from 'dockerode';
import { InputError } from '../../util/errors.js';
import { publicKeyBlob } from '../../remote/index.js';
import { sshEngineAgent } from './ssh-engine.js';

/**
 * Where a Docker engine answers, as a centre writes it:
 * - `unix:///var/run/docker.sock`: this host's engine (the default);
 * - `tcp://host:2376` with `tls` (client certificate files): an engine on
 *   another host, verified both ways; plain TCP is refused (whoever reaches
 *   the port would be root on that host);
 * - `ssh://user@host[:port]` with `sshKey` (a private key file): the engine
 *   reached through the host's sshd (`docker system dial-stdio` there);
 *   `sshHostKey` (the host's public key, `ssh-ed25519 AAAA…`) is required:
 *   the Docker client library checks none, and whoever answers in the
 *   host's place would be given the labs.
 */
export interface DockerEngineAddress {
  url: string;
  tls?: { ca: string; cert: string; key: string };
  sshKey?: string;
  sshHostKey?: string;
}

export interface DockerConnection {
  options: Dockerode.DockerOptions;
  /** The engine runs on this host: its kernel, files and firewall are ours to read and set. */
  local: boolean;
  /** How it is named in messages (never with a secret). */
  label: string;
}

export function dockerConnection(address: DockerEngineAddress, where = 'docker'): DockerConnection {
  let url: URL;
  try {
    url = new URL(address.url);
  } catch {
    throw new InputError(`${where}: not an engine address: ${address.url}`, [{ where, message: 'expected unix:///path, tcp://host:port or ssh://user@host' }]);
  }
  const read = (file: string, what: string) => {
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      throw new InputError(`${where}: cannot read the ${what} ${file}`, [{ where, message: (err as Error).message }]);
    }
  };
  switch (url.protocol) {
    case 'unix:':
      return { options: { socketPath: url.pathname }, local: true, label: address.url };
    case 'tcp:': {
      if (!address.tls) throw new InputError(`${where}: ${address.url} needs TLS client certificates (tls: { ca, cert, key })`, [{ where: `${where}.tls`, message: 'an engine on TCP without TLS gives root on its host to whoever reaches the port' }]);
      const port = Number(url.port || 2376);
      return {
        options: { protocol: 'https', host: url.hostname, port, ca: read(address.tls.ca, 'CA certificate'), cert: read(address.tls.cert, 'client certificate'), key: read(address.tls.key, 'client key') },
        local: false,
        label: `tcp://${url.hostname}:${port}`,
      };
    }
    case 'ssh:': {
      if (!address.sshKey) throw new InputError(`${where}: ${address.url} needs sshKey (a private key file)`, [{ where: `${where}.sshKey`, message: 'the key examlab logs in to the host with' }]);
      if (!address.sshHostKey) throw new InputError(`${where}: ${address.url} needs sshHostKey (the host's public key, as in known_hosts: "ssh-ed25519 AAAA…")`, [{ where: `${where}.sshHostKey`, message: 'read it on the host: cat /etc/ssh/ssh_host_ed25519_key.pub' }]);
      const port = Number(url.port || 22);
      const username = decodeURIComponent(url.username || 'root');
      publicKeyBlob(address.sshHostKey, `${where}.sshHostKey`); // refused now, not at the first request
      const agent = sshEngineAgent({ host: url.hostname, port, username, privateKey: read(address.sshKey, 'SSH key'), hostKey: address.sshHostKey });
      return {
        // Requests go through `agent` (one kept SSH connection, the host key pinned); host and port only name it.
        options: { protocol: 'http', host: url.hostname, port, agent } as Dockerode.DockerOptions,
        local: false,
        label: `ssh://${username}@${url.hostname}:${port}`,
      };
    }
    default:
      throw new InputError(`${where}: unknown engine address scheme ${url.protocol}`, [{ where, message: 'expected unix://, tcp:// (with tls) or ssh:// (with sshKey)' }]);
  }
}

/** This host's engine, where images are built. */
export function localEngine(socketPath: string): Dockerode {
  return new Dockerode({ socketPath });
}
