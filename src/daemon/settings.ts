import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism, networkInterfaces } from 'node:os';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { InputError, errorMessage } from '../util/errors.js';
import type { LabHostConfig } from './config.js';
import { durationSchema, sizeSchema } from '../util/units.js';

/** Where the daemon looks for its configuration when `--config` is not given. */
export const DEFAULT_CONFIG_FILE = '/etc/examlab/daemon.yaml';

const duration = (what: string) => durationSchema(what, { numberIsMs: true });
const positiveDuration = (what: string) => durationSchema(what, { numberIsMs: true, positive: true });

/**
 * Labs worked on at once, from the host's cores unless set. Building a lab
 * is mostly CPU (systemd booting, steps) with waits between (a unit
 * starting, a check's timeout): a few labs a core keep the cores busy. A
 * grading is mostly waiting (a check on a broken service waits out its
 * timeout), so many run at once. Measured in BENCHMARKS.md ("exam room").
 */
export const AUTO_CONCURRENCY = {
  provisioning: (cores: number) => Math.min(32, Math.max(4, cores * 6)),
  grading: (cores: number) => Math.min(64, Math.max(8, cores * 16)),
};
const concurrency = (what: keyof typeof AUTO_CONCURRENCY) =>
  z
    .union([z.literal('auto'), z.number().int().min(1).max(64)])
    .default('auto')
    .transform((v) => (v === 'auto' ? AUTO_CONCURRENCY[what](availableParallelism()) : v))
    .describe(`Labs ${what === 'grading' ? 'graded' : 'built'} at once; "auto" (the default) from the host's cores`);

const tokenSchema = z
  .strictObject({
    name: z.string().min(1),
    role: z.enum(['operator', 'jury']),
    token: z.string().min(16, 'at least 16 characters').optional(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/, 'the hex SHA-256 of the token').optional(),
  })
  .refine((t) => (t.token === undefined) !== (t.sha256 === undefined), { message: 'give exactly one of token or sha256' });

const labelSchema = z
  .record(z.string(), z.union([z.string(), z.number(), z.boolean()]))
  .superRefine((labels, ctx) => {
    for (const name of Object.keys(labels)) {
      if (!/^[a-z][a-z0-9_.-]{0,62}$/.test(name)) ctx.addIssue({ code: 'custom', path: [name], message: 'label names are lowercase: letters, digits, ".", "_", "-"' });
    }
  })
  .default({})
  .transform((labels) => Object.fromEntries(Object.entries(labels).map(([k, v]) => [k, String(v)])));

const sshLogin = {
  sshKey: z.string().optional().describe('The private key file examlab logs in to the host with'),
  sshHostKey: z.string().optional().describe('The host\'s public SSH key, as in known_hosts (ssh-ed25519 AAAA…): required with ssh://'),
};

const labHostSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,30}$/, 'lowercase letters, digits and dashes'),
  // The short form (a string) is the address alone: made the long form here, so the rest reads one shape.
  docker: z
    .union([
      z.string().transform((url) => ({ url }) as { url: string; tls?: string; sshKey?: string; sshHostKey?: string }),
      z.strictObject({
        url: z.string().describe('unix:///var/run/docker.sock, tcp://host:2376 (with tls) or ssh://user@host (with sshKey)'),
        tls: z.string().optional().describe('A folder holding ca.pem, cert.pem and key.pem (the client certificate)'),
        ...sshLogin,
      }),
    ])
    .describe('The host\'s Docker engine'),
  libvirt: z
    .union([z.string().transform((url) => ({ url }) as { url: string; sshKey?: string; sshHostKey?: string }), z.strictObject({ url: z.string(), ...sshLogin })])
    .optional()
    .describe('libvirt on the same host, for labs with VMs: qemu:///system (this host) or qemu+ssh://user@host/system (the SSH key and host key default to the docker entry\'s)'),
  capacity: z.number().int().min(1).optional().describe('Labs it may hold at once; otherwise as many as its memory, disk and subnets allow'),
  labels: labelSchema.describe('What the host offers, e.g. kvm: true; a scenario\'s hostLabels must all match'),
}).superRefine((host, ctx) => {
  const { docker } = host;
  const need = (path: string[], why: string) => ctx.addIssue({ code: 'custom', path, message: why });
  if (!/^(unix|tcp|ssh):\/\//.test(docker.url)) ctx.addIssue({ code: 'custom', path: ['docker'], message: `${docker.url}: expected unix:///path, tcp://host:port (with tls) or ssh://user@host (with sshKey and sshHostKey)` });
  else if (docker.url.startsWith('tcp:') && !docker.tls) need(['docker', 'tls'], 'an engine on TCP needs TLS client certificates (a folder of ca.pem, cert.pem, key.pem): without, whoever reaches the port is root on the host');
  else if (docker.url.startsWith('ssh:')) {
    if (!docker.sshKey) need(['docker', 'sshKey'], 'the private key file examlab logs in to the host with');
    if (!docker.sshHostKey) need(['docker', 'sshHostKey'], 'the host\'s public key, as in known_hosts (ssh-ed25519 AAAA…)');
  }
  if (host.libvirt === undefined) return;
  const libvirt = libvirtOf(docker, host.libvirt);
  if (libvirt.url.startsWith('qemu:///')) {
    if (!docker.url.startsWith('unix:')) need(['libvirt'], `${libvirt.url} is this host's libvirt: its VMs cannot join the lab networks of an engine on another host (give qemu+ssh://user@host/system)`);
  } else if (/^qemu\+ssh:\/\/[^/]+\/system$/.test(libvirt.url)) {
    if (!libvirt.sshKey) need(['libvirt', 'sshKey'], 'the private key file examlab logs in to the host with (or an ssh:// docker entry\'s)');
    if (!libvirt.sshHostKey) need(['libvirt', 'sshHostKey'], 'the host\'s public key, as in known_hosts (ssh-ed25519 AAAA…)');
  } else need(['libvirt'], `${libvirt.url}: expected qemu:///system or qemu+ssh://user@host[:port]/system`);
});

type LabHostEntry = z.output<typeof labHostSchema>;

/** A host's libvirt entry, its SSH login defaulting to the docker entry's. */
function libvirtOf(docker: LabHostEntry['docker'], libvirt: NonNullable<LabHostEntry['libvirt']>): { url: string; sshKey?: string; sshHostKey?: string } {
  return { url: libvirt.url, sshKey: libvirt.sshKey ?? docker.sshKey, sshHostKey: libvirt.sshHostKey ?? docker.sshHostKey };
}

/** The daemon's configuration file (YAML or JSON); every field has a default. */
export const daemonConfigSchema = z.strictObject({
  dataDir: z.string().optional().describe('Default: /var/lib/examlab as root'),
  http: z.strictObject({ host: z.string().default('0.0.0.0'), port: z.number().int().min(0).max(65535).default(8080) }).prefault({}),
  ssh: z
    .strictObject({
      host: z.string().default('0.0.0.0'),
      port: z.number().int().min(0).max(65535).default(2222),
      publicHost: z.string().optional().describe('The address candidates type; default: this host\'s first network address'),
      unauthenticated: z
        .strictObject({
          perAddress: z.number().int().min(1).max(10_000).default(10).describe('Connections from one client address that have not logged in yet; more are closed at once'),
          total: z.number().int().min(1).max(100_000).default(200).describe('Connections from all addresses that have not logged in yet'),
          timeout: positiveDuration('ssh.unauthenticated.timeout').prefault('30s').describe('A connection that has not logged in by then is closed'),
        })
        .prefault({}),
    })
    .prefault({}),
  failedTokens: z
    .strictObject({
      perAddress: z.number().int().min(1).max(100_000).default(30),
      window: positiveDuration('failedTokens.window').prefault('5m'),
    })
    .prefault({})
    .describe('Unknown tokens (HTTP Bearer and gateway logins) one client address may send in a window; then none of its tokens is checked until the window ends (HTTP 429)'),
  scenarioFolders: z
    .array(z.string().min(1))
    .default([])
    .describe("Trainers' folders of scenarios, offered besides examlab's own: NAME.yaml, or NAME/NAME.yaml with its images/ and files beside it"),
  tokens: z.array(tokenSchema).default([]).describe('Staff tokens; when none is given, an operator and a jury token are made at first start'),
  provisioning: z
    .strictObject({
      concurrency: concurrency('provisioning'),
      attempts: z.number().int().min(1).max(10).default(3),
      retryDelay: duration('retryDelay').prefault('3s'),
    })
    .prefault({}),
  grading: z.strictObject({ concurrency: concurrency('grading') }).prefault({}),
  hosts: z
    .array(labHostSchema)
    .default([])
    .refine((hosts) => new Set(hosts.map((h) => h.name)).size === hosts.length, 'two hosts have the same name')
    .describe('Lab hosts: each lab goes wholly to one, by the room it has left; none: this host\'s engine only'),
  hostLostAfter: positiveDuration('hostLostAfter').prefault('1m').describe('A lab host silent this long has lost its labs: they are built again on the others'),
  tick: duration('tick').prefault('1s'),
  engineCheck: duration('engineCheck').prefault('2s').describe('How often the engines holding live labs are asked whether they answer and which of their machines are stopped (an outage is said, labs picked up and stopped machines started again within this)'),
  diskReserve: sizeSchema('diskReserve')
    .prefault('2G')
    .describe("Free space the data directory's filesystem keeps for the store: under twice this the daemon warns in its log, under it /readyz fails"),
  shutdownGrace: duration('shutdownGrace').prefault('20s'),
});
export type DaemonConfig = z.output<typeof daemonConfigSchema>;

/** Reads the configuration: the given file, else the default file if present, else the defaults. */
export function loadDaemonConfig(file: string | undefined): { config: DaemonConfig; file?: string } {
  const path = file ?? (existsSync(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : undefined);
  if (!path) return { config: daemonConfigSchema.parse({}) };
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new InputError(`cannot read the daemon configuration ${path}: ${errorMessage(err)}`);
  }
  const doc = parseDocument(text, { prettyErrors: false });
  if (doc.errors.length) throw new InputError(`${path}: not valid YAML or JSON`, doc.errors.map((e) => ({ where: path, message: e.message.split('\n')[0] as string })));
  const parsed = daemonConfigSchema.safeParse(doc.toJS() ?? {});
  if (!parsed.success) {
    throw new InputError(
      `${path}: invalid daemon configuration`,
      parsed.error.issues.map((i) => ({ where: `${path} ${i.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '')}`, message: i.message })),
    );
  }
  return { config: parsed.data, file: path };
}

/** The address to print for candidates: the first external IPv4 that is not a container or lab bridge. */
export function defaultPublicHost(): string {
  for (const [name, addresses] of Object.entries(networkInterfaces())) {
    if (/^(docker|br-|veth|exl|virbr|lo)/.test(name)) continue;
    const v4 = addresses?.find((a) => a.family === 'IPv4' && !a.internal);
    if (v4) return v4.address;
  }
  return '127.0.0.1';
}

/** The lab hosts of the configuration, as the composition root takes them. */
export function labHostsOf(config: DaemonConfig): LabHostConfig[] {
  return config.hosts.map((h) => {
    const { docker } = h;
    const tls = docker.tls ? { ca: join(docker.tls, 'ca.pem'), cert: join(docker.tls, 'cert.pem'), key: join(docker.tls, 'key.pem') } : undefined;
    return {
      name: h.name,
      engine: { url: docker.url, ...(tls ? { tls } : {}), ...(docker.sshKey ? { sshKey: docker.sshKey, sshHostKey: docker.sshHostKey } : {}) },
      ...(h.libvirt !== undefined ? { libvirt: libvirtOf(docker, h.libvirt) } : {}),
      capacity: h.capacity,
      labels: h.labels,
    };
  });
}
