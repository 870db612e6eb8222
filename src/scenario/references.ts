import { statSync, type Stats } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { isScalar, visit, type Scalar } from 'yaml';
import type { ErrorDetail } from '../util/errors.js';
import { CHECK_KINDS, type CheckCommon } from '../checks/index.js';
import { findPlaceholders } from '../util/template.js';
import { checkSchemas } from './schema.js';
import { formatPath, type SourceFile, type Path } from './source.js';

type Raw = Record<string, unknown>;

const asList = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const asRecord = (v: unknown): Raw => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Raw) : {});
const asString = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** Sections whose strings may hold `{{ placeholders }}`. */
const TEMPLATED_SECTIONS = ['machines', 'setup', 'faults', 'faultPools', 'solution', 'instructions', 'checks'];

/**
 * Everything the schema alone cannot say: names that must exist, be unique,
 * not loop; placeholders that must be known; files that must be there. Works
 * on the raw data (defensively) so it can run even when the schema failed.
 */
export interface LoadOptions {
  /** Names of the images a machine may use; unchecked when absent. */
  knownImages?: readonly string[];
  /** Which provider runs each image (a VM image cannot be a container); unchecked when absent. */
  imageProviders?: Readonly<Record<string, string>>;
  /** Where `upload` steps look for files; the scenario's own folder by default. */
  baseDir?: string;
}

export function checkReferences(source: SourceFile, data: unknown, options: LoadOptions): ErrorDetail[] {
  const problems: ErrorDetail[] = [];
  const at = (path: Path, message: string, key?: string) => problems.push(source.detail(path, message, { key }));
  const root = asRecord(data);

  const networks = uniqueNames(asList(root.networks ?? [{ name: 'lan' }]), 'networks', 'network', at);
  const machineList = asList(root.machines);
  const machines = uniqueNames(machineList, 'machines', 'machine', at);
  const competencies = uniqueNames(asList(root.competencies), 'competencies', 'competency', at, 'id');
  const checkList = asList(root.checks);
  const checks = uniqueNames(checkList, 'checks', 'check', at, 'id');
  const variables = Object.keys(asRecord(root.variables));

  const machineNetworks = machineList.map((m, i) => {
    const attachments = asList(asRecord(m).networks);
    const names = attachments.length ? attachments.map((a) => asString(asRecord(a).network)).filter((n): n is string => Boolean(n)) : networks.slice(0, 1);
    attachments.forEach((a, j) => {
      const network = asString(asRecord(a).network);
      if (network && !networks.includes(network)) at(['machines', i, 'networks', j, 'network'], `unknown network "${network}"; declared: ${networks.join(', ') || '(none)'}`);
    });
    if ((asString(asRecord(m).provider) ?? 'docker') !== 'libvirt') {
      for (const key of ['boot', 'disks']) if (asRecord(m)[key] !== undefined) at(['machines', i, key], `only virtual machines (provider: libvirt) have ${key}`);
      if (asRecord(m).shell === 'powershell') at(['machines', i, 'shell'], 'only virtual machines (provider: libvirt) can be Windows guests');
    }
    if (asRecord(m).shell === 'powershell' && asRecord(m).login !== undefined) {
      at(['machines', i, 'login'], 'candidate accounts are made with Linux tools; on a Windows guest, prepare the account in its image');
    }
    const image = asString(asRecord(m).image);
    if (image && options.knownImages && !options.knownImages.includes(image)) {
      at(['machines', i, 'image'], `unknown image "${image}"; known: ${options.knownImages.join(', ')}`);
    }
    const imageProvider = image ? options.imageProviders?.[image] : undefined;
    const provider = asString(asRecord(m).provider) ?? 'docker';
    if (imageProvider && imageProvider !== provider) {
      at(['machines', i, 'image'], `image "${image}" runs on ${imageProvider === 'libvirt' ? 'libvirt (a VM image): add provider: libvirt' : `docker (a container image), not on ${provider}`}`);
    }
    return { name: asString(asRecord(m).name) ?? '', networks: names, vm: provider === 'libvirt' };
  });
  checkAddresses(machineList, at);

  const checkStep = (path: Path, step: unknown) => {
    const s = asRecord(step);
    const machine = asString(s.machine);
    if (machine && !machines.includes(machine)) at([...path, 'machine'], unknownMachine(machine, machines));
    const target = machineList.find((m) => asRecord(m).name === machine);
    if (s.reboot !== undefined && target && asRecord(target).provider !== 'libvirt') at([...path, 'reboot'], `only virtual machines (provider: libvirt) can be rebooted by a step; ${machine} is a container`);
    if (target && asRecord(target).boot === 'network' && path[0] !== 'solution' && !(path[0] === 'faultPools' && path[4] === 'solution')) {
      at([...path, 'machine'], `${machine} boots from the network: it is blank until deployed, so only a solution can run steps on it (through its guest agent, once deployed)`);
    }
    if (target && asRecord(target).shell === 'powershell') {
      for (const key of ['reboot', 'mode', 'owner']) if (s[key] !== undefined) at([...path, key], `not supported on a Windows guest (${machine} has shell: powershell)`);
    }
    const upload = asString(s.upload);
    if (upload !== undefined && options.baseDir !== undefined) {
      const file = isAbsolute(upload) ? upload : join(options.baseDir, upload);
      // One file: "" or "." would name the scenario's folder itself, found only when the lab is built.
      const stat = statOrNothing(file);
      if (!stat) at([...path, 'upload'], `no such file: ${file}`);
      else if (!stat.isFile()) at([...path, 'upload'], `not a file: ${file} (an upload copies one file of the scenario's folder)`);
    }
  };
  for (const section of ['setup', 'faults', 'solution']) asList(root[section]).forEach((step, i) => checkStep([section, i], step));
  const pools = asList(root.faultPools);
  uniqueNames(pools, 'faultPools', 'fault pool', at, 'id');
  pools.forEach((pool, i) =>
    asList(asRecord(pool).options).forEach((option, j) => {
      for (const part of ['steps', 'solution']) asList(asRecord(option)[part]).forEach((step, k) => checkStep(['faultPools', i, 'options', j, part, k], step));
    }),
  );

  const kinds = new Map(CHECK_KINDS.map((k) => [k.kind, k]));
  checkList.forEach((item, i) => {
    const c = asRecord(item);
    const machine = asString(c.machine);
    if (machine && !machines.includes(machine)) at(['checks', i, 'machine'], unknownMachine(machine, machines));
    const competency = asString(c.competency);
    if (competency && !competencies.includes(competency)) {
      at(['checks', i, 'competency'], `unknown competency "${competency}"; declared: ${competencies.join(', ') || '(none)'}`);
    }
    asList(c.prerequisites).forEach((p, j) => {
      if (typeof p !== 'string') return;
      if (p === c.id) at(['checks', i, 'prerequisites', j], 'a check cannot be its own prerequisite');
      else if (!checks.includes(p)) at(['checks', i, 'prerequisites', j], `unknown check "${p}"`);
    });
    const checked = machineList.find((m) => asRecord(m).name === machine);
    const windows = asRecord(checked).shell === 'powershell';
    if (windows && c.kind !== 'command') at(['checks', i, 'kind'], `on a Windows guest (${machine} has shell: powershell) only command checks run: the grader's toolbox is for Linux`);
    if (!windows && c.shell === 'powershell') at(['checks', i, 'shell'], `${machine} is not a Windows guest (give it shell: powershell)`);
    const kind = kinds.get(asString(c.kind) ?? '');
    // A check its own schema refuses is reported by the schema; its references are read only once it parses.
    const parsed = checkSchemas.get(asString(c.kind) ?? '')?.safeParse(c);
    if (!kind || !parsed?.success) return;
    const check = parsed.data as CheckCommon;
    for (const m of kind.machinesReferenced(check)) {
      // A templated value (an address) is only known per lab.
      if (!machines.includes(m) && !m.includes('{{')) at(['checks', i], unknownMachine(m, machines));
    }
    for (const message of kind.validate(check)) at(['checks', i], message);
  });
  const criteria = asList(root.manualCriteria);
  uniqueNames(criteria, 'manualCriteria', 'manual criterion', at, 'id');
  criteria.forEach((item, i) => {
    const competency = asString(asRecord(item).competency);
    if (competency && !competencies.includes(competency)) {
      at(['manualCriteria', i, 'competency'], `unknown competency "${competency}"; declared: ${competencies.join(', ') || '(none)'}`);
    }
  });
  const cycle = prerequisiteCycle(checkList);
  if (cycle) at(['checks', cycle.index, 'prerequisites'], `prerequisites loop: ${cycle.ids.join(' -> ')}`);

  const language = asString(root.language) ?? 'fr';
  const instructions = asRecord(root.instructions);
  if (root.instructions !== undefined && !asString(instructions[language])) {
    at(['instructions'], `instructions in the scenario's language ("${language}") are required`);
  }

  const known = new Set([...variables, ...builtinNames(machineNetworks, networks)]);
  problems.push(...unknownPlaceholders(source, known, variables));
  return problems;
}

function uniqueNames(list: unknown[], section: string, what: string, at: (p: Path, m: string) => void, field = 'name'): string[] {
  const names: string[] = [];
  list.forEach((item, i) => {
    const name = asString(asRecord(item)[field]);
    if (name === undefined) return;
    if (names.includes(name)) at([section, i, field], `duplicate ${what} ${field} "${name}"`);
    names.push(name);
  });
  return names;
}

function unknownMachine(name: string, machines: string[]): string {
  return `unknown machine "${name}"; declared: ${machines.join(', ') || '(none)'}`;
}

function checkAddresses(machines: unknown[], at: (p: Path, m: string) => void): void {
  const taken = new Map<string, string>();
  machines.forEach((m, i) => {
    asList(asRecord(m).networks).forEach((a, j) => {
      const { network, host } = asRecord(a);
      if (typeof host !== 'number' || typeof network !== 'string') return;
      const key = `${network}/${host}`;
      const owner = taken.get(key);
      if (owner) at(['machines', i, 'networks', j, 'host'], `address .${host} on ${network} is already ${owner}'s`);
      else taken.set(key, asString(asRecord(m).name) ?? `machines[${i}]`);
    });
  });
}

function prerequisiteCycle(checks: unknown[]): { index: number; ids: string[] } | undefined {
  const edges = new Map<string, string[]>();
  const index = new Map<string, number>();
  checks.forEach((c, i) => {
    const id = asString(asRecord(c).id);
    if (!id) return;
    index.set(id, i);
    edges.set(id, asList(asRecord(c).prerequisites).filter((p): p is string => typeof p === 'string'));
  });
  const state = new Map<string, 'visiting' | 'done'>();
  const walk = (id: string, trail: string[]): string[] | undefined => {
    if (state.get(id) === 'done') return undefined;
    if (state.get(id) === 'visiting') return [...trail.slice(trail.indexOf(id)), id];
    state.set(id, 'visiting');
    for (const next of edges.get(id) ?? []) {
      if (next === id || !edges.has(next)) continue;
      const found = walk(next, [...trail, id]);
      if (found) return found;
    }
    state.set(id, 'done');
    return undefined;
  };
  for (const id of edges.keys()) {
    const ids = walk(id, []);
    if (ids) return { index: index.get(ids[0] as string) ?? 0, ids };
  }
  return undefined;
}

/** Every `{{ name }}` in the templated sections must name a variable or a lab fact. */
function unknownPlaceholders(source: SourceFile, known: Set<string>, variables: string[]): ErrorDetail[] {
  const problems: ErrorDetail[] = [];
  const contents = source.doc.contents;
  if (!contents) return problems;
  visit(contents, {
    Scalar(_key, node: Scalar, ancestors) {
      if (typeof node.value !== 'string' || !node.value.includes('{{')) return;
      const path = pathOf(ancestors, node);
      if (!TEMPLATED_SECTIONS.includes(String(path[0]))) return;
      for (const placeholder of findPlaceholders(node.value)) {
        if (known.has(placeholder.name)) continue;
        const hint = variables.length ? `variables: ${variables.join(', ')}` : 'no variables declared';
        // Point at the placeholder itself, as written in the file.
        const start = node.range?.[0] ?? 0;
        const raw = source.text.slice(start, node.range?.[1] ?? start);
        problems.push({
          where: `${source.position(start + (offsetOf(raw, placeholder.name) ?? 0))} ${formatPath(path)}`,
          message: `unknown variable "${placeholder.name}" (${hint}; lab facts like machines.<name>.ip)`,
        });
      }
    },
  });
  return problems;
}

function offsetOf(raw: string, name: string): number | undefined {
  const m = new RegExp(`\\{\\{\\s*${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*\\}\\}`).exec(raw);
  return m?.index;
}

function pathOf(ancestors: readonly unknown[], node: unknown): Path {
  const path: (string | number)[] = [];
  let current: unknown = node;
  for (let i = ancestors.length - 1; i >= 0; i--) {
    const parent = ancestors[i] as { items?: unknown[]; key?: unknown; value?: unknown };
    if (parent && 'key' in parent && 'value' in parent) {
      if (parent.value === current && isScalar(parent.key)) path.unshift(String(parent.key.value));
    } else if (parent && Array.isArray(parent.items)) {
      const idx = parent.items.indexOf(current);
      if (idx >= 0 && !(parent.items[idx] && typeof parent.items[idx] === 'object' && 'key' in (parent.items[idx] as object))) path.unshift(idx);
    }
    current = parent;
  }
  return path;
}

/** The lab facts a scenario may refer to, for its machines and networks (a VM's MAC addresses too). */
export function builtinNames(machines: readonly { name: string; networks: string[]; vm?: boolean }[], networks: readonly string[]): string[] {
  const names = ['lab.id', 'candidate.id', 'candidate.name'];
  for (const m of machines) {
    names.push(`machines.${m.name}.ip`, `machines.${m.name}.hostname`, `machines.${m.name}.login.user`);
    for (const n of m.networks) names.push(`machines.${m.name}.${n}.ip`);
    if (m.vm) names.push(`machines.${m.name}.mac`, ...m.networks.map((n) => `machines.${m.name}.${n}.mac`));
  }
  for (const n of networks) names.push(`networks.${n}.subnet`, `networks.${n}.prefix`, `networks.${n}.gateway`, `networks.${n}.netmask`);
  return names;
}

function statOrNothing(file: string): Stats | undefined {
  try {
    return statSync(file);
  } catch {
    return undefined;
  }
}
