import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

/**
 * Keys and certificates made per run with the host's own tools (Debian's
 * openssl and ssh-keygen): a certificate authority, the engines' server
 * certificates, a client certificate, SSH key pairs. EC P-256 and ed25519:
 * instant to make, accepted by Go's TLS, Node's and ssh2.
 */

const run = promisify(execFile);

/** A key pair and its certificate, as PEM text, with the files they are in. */
export interface Certificate {
  cert: string;
  key: string;
  certFile: string;
  keyFile: string;
}

export interface CertificateAuthority extends Certificate {
  name: string;
}

const DAYS = '2';

async function openssl(args: string[]): Promise<void> {
  try {
    await run('openssl', args, { timeout: 30_000 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`openssl ${args[0]} failed: ${e.stderr?.trim() || e.message} (is Debian's openssl installed?)`);
  }
}

async function read(certFile: string, keyFile: string): Promise<Certificate> {
  const [cert, key] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]);
  return { cert, key, certFile, keyFile };
}

/** A self-signed authority in `dir` (ca.pem, ca-key.pem). */
export async function createCertificateAuthority(dir: string, name: string): Promise<CertificateAuthority> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const certFile = join(dir, 'ca.pem');
  const keyFile = join(dir, 'ca-key.pem');
  await openssl([
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyFile, '-out', certFile, '-days', DAYS, '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return { name, ...(await read(certFile, keyFile)) };
}

/** A certificate signed by `ca`, in `dir` as `<file>-cert.pem` and `<file>-key.pem`. */
async function issue(ca: CertificateAuthority, dir: string, file: string, subject: string, extensions: string[]): Promise<Certificate> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const keyFile = join(dir, `${file}-key.pem`);
  const csrFile = join(dir, `${file}.csr`);
  const extFile = join(dir, `${file}.ext`);
  const certFile = join(dir, `${file}-cert.pem`);
  await openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', csrFile, '-subj', `/CN=${subject}`]);
  await writeFile(extFile, `${extensions.join('\n')}\n`);
  await openssl([
    'x509', '-req', '-in', csrFile, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-set_serial', `0x${randomBytes(12).toString('hex')}`,
    '-days', DAYS, '-extfile', extFile, '-out', certFile,
  ]);
  return read(certFile, keyFile);
}

/** An engine's certificate: valid for its address and its name (what a client dials). */
export function issueServerCertificate(ca: CertificateAuthority, dir: string, host: { name: string; ip: string }): Promise<Certificate> {
  return issue(ca, dir, 'server', host.name, [
    `subjectAltName=IP:${host.ip},DNS:${host.name}`,
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=serverAuth',
  ]);
}

/** A client's certificate, what `dockerd --tlsverify` asks of every caller. */
export function issueClientCertificate(ca: CertificateAuthority, dir: string, name: string): Promise<Certificate> {
  return issue(ca, dir, 'client', name, ['keyUsage=critical,digitalSignature', 'extendedKeyUsage=clientAuth']);
}

export interface SshKeyPair {
  /** OpenSSH private key (PEM-like text), as ssh2 and `ssh -i` take it. */
  privateKey: string;
  /** One authorized_keys / known_hosts line: `ssh-ed25519 AAAA… comment`. */
  publicKey: string;
  privateKeyFile: string;
}

/** An ed25519 key pair, in `file` and `file.pub`. */
export async function createSshKeyPair(file: string, comment: string): Promise<SshKeyPair> {
  try {
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file], { timeout: 30_000 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`ssh-keygen failed: ${e.stderr?.trim() || e.message}`);
  }
  const [privateKey, publicKey] = await Promise.all([readFile(file, 'utf8'), readFile(`${file}.pub`, 'utf8')]);
  return { privateKey, publicKey: publicKey.trim(), privateKeyFile: file };
}
