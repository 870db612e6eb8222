import { z } from 'zod';
import { pattern } from '../fields.js';
import { defineKind, ProbeError, type Assertion, type Observation } from '../check-kind.js';
import { answered, assertFlag, clip, fileText, obs } from '../assertions.js';
import { matcherSchema, match } from '../matchers.js';
import { executablePaths, parseProcessLines, sameExecutable } from './processes.js';

/** Where unit files live, in systemd's order of precedence. */
const UNIT_DIRS = ['/etc/systemd/system', '/run/systemd/system', '/lib/systemd/system', '/usr/lib/systemd/system'];
/** Targets a service is commonly enabled into (`systemctl enable` links it in <target>.wants/). */
const TARGETS = ['multi-user', 'graphical', 'default', 'sockets', 'timers', 'sysinit', 'basic', 'network-online', 'remote-fs', 'printer', 'getty'];

/** The full unit name: "cups" is "cups.service". */
export function unitName(name: string): string {
  return name.includes('.') ? name : `${name}.service`;
}

/** The programs a unit file starts (ExecStart= lines, without systemd's prefixes). */
export function execStartPrograms(unitFile: string): string[] {
  const programs: string[] = [];
  for (const line of unitFile.split('\n')) {
    const m = /^\s*ExecStart\s*=\s*(.*)$/.exec(line);
    const program = m?.[1]?.trim().replace(/^[-@:+!]+/, '').split(/\s+/)[0];
    if (program) programs.push(program);
  }
  return programs;
}

/**
 * Where systemd puts a unit's processes: system.slice/NAME, or for an instance
 * of a template (openvpn-server@site.service) the template's own slice,
 * whose name escapes "-" (system-openvpn\x2dserver.slice).
 */
export function unitCgroup(unit: string): string {
  const template = /^([^@]+)@[^@]*\.service$/.exec(unit)?.[1];
  return template ? `system.slice/system-${template.replace(/-/g, '\\x2d')}.slice/${unit}` : `system.slice/${unit}`;
}

/** The files a unit may be defined in: its own, or for an instance its template's. */
function unitFileNames(unit: string): string[] {
  const template = /^([^@]+@)[^@]*(\.service)$/.exec(unit);
  return template ? [unit, `${template[1]}${template[2]}`] : [unit];
}

/** What the probe reads for one unit: its cgroup, its unit files and its enablement links. */
export function unitObservations(unit: string): Record<string, Observation> {
  const probe: Record<string, Observation> = { cgroup: obs('cgroup', unitCgroup(unit)) };
  unitFileNames(unit).forEach((name, j) => UNIT_DIRS.forEach((dir, i) => (probe[`file${j * UNIT_DIRS.length + i}`] = obs('read', `${dir}/${name}`, 65536))));
  probe.masked = obs('lstat', `/etc/systemd/system/${unit}`);
  TARGETS.forEach((t) => {
    probe[`wants-${t}`] = obs('lstat', `/etc/systemd/system/${t}.target.wants/${unit}`);
    probe[`runtime-${t}`] = obs('lstat', `/run/systemd/system/${t}.target.wants/${unit}`);
  });
  return probe;
}

/**
 * A systemd unit, judged from what the kernel and the filesystem say, never
 * from systemd's own answers (a candidate can plant a socket that answers in
 * its name): running when its cgroup holds a live process running the
 * service's program; enabled when a target's .wants/ links it.
 */
export const serviceKind = defineKind(
  'service',
  {
    name: pattern(/^[A-Za-z0-9@_.:\\-]+$/, 'not a valid unit name').describe('Unit name; ".service" is implied'),
    active: z.boolean().optional().describe('Running: its cgroup holds a live process running its program'),
    enabled: z.boolean().optional().describe('Started at boot (linked in a target\'s .wants/)'),
    program: matcherSchema.optional().describe('Executable the running service must be, e.g. /usr/sbin/apache2; default: what it ran in the sound system, else its ExecStart='),
  },
  {
    plan(check) {
      return { machine: check.machine, probe: unitObservations(unitName(check.name)) };
    },
    evaluate(check, facts, ctx) {
      const unit = unitName(check.name);
      const cgroup = answered(facts, 'cgroup', `read the cgroup of ${unit}`);
      if (cgroup.status === 'part') throw new ProbeError(`cannot read the cgroup of ${unit} whole`);
      const processes = cgroup.status === 'neg' ? [] : parseProcessLines(cgroup.data.toString('utf8'), ['pid', 'exe', 'cmdline']);
      const maskedLink = answered(facts, 'masked', `inspect /etc/systemd/system/${unit}`);
      const masked = maskedLink.status === 'ok' && /target=\/dev\/null/.test(maskedLink.data.toString('utf8'));
      const files = unitFileNames(unit).flatMap((name) => UNIT_DIRS.map((dir) => `${dir}/${name}`));
      // A masked unit's link to /dev/null is not its definition: the one under /lib still says what it runs.
      const unitFile = files.map((path, i) => (masked && path === `/etc/systemd/system/${unit}` ? undefined : fileText(facts, `file${i}`, path))).find((t) => t !== undefined);
      const links = TARGETS.flatMap((t) => [`wants-${t}`, `runtime-${t}`].filter((k) => answered(facts, k, `inspect the links of ${unit}`).status === 'ok').map((k) => `${k.replace(/-.*/, '')} ${t}.target`));
      const reference = ctx?.servicePrograms(check.machine, unit) ?? (unitFile ? execStartPrograms(unitFile) : []);
      const program = check.program;
      const runsProgram = (exe: string) => (program !== undefined ? executablePaths(exe).some((path) => match(program, path).pass) : reference.some((e) => sameExecutable(e, exe)));
      const running = processes.filter((p) => runsProgram(p.exe));
      const evidence = [
        `${unit}: ${unitFile === undefined ? 'no unit file' : masked ? 'masked' : 'unit file found'}; ${links.length ? `enabled (${links.join(', ')})` : 'not enabled'}`,
        processes.length ? `processes in its cgroup:\n${clip(processes.map((p) => `${p.pid} ${p.exe || '?'} ${p.cmdline}`).join('\n'), 1500)}` : 'no process in its cgroup',
        `the service's program: ${program !== undefined ? JSON.stringify(program) : reference.join(', ') || '(unknown)'}`,
      ].join('\n');
      const wantActive = check.active ?? (check.enabled === undefined ? true : undefined);
      const assertions: Assertion[] = [];
      if (unitFile === undefined && !processes.length && (wantActive === true || check.enabled === true)) {
        assertions.push({ name: 'exists', pass: false, expected: `unit ${unit} exists`, actual: 'no such unit', gate: true });
        return { assertions, evidence };
      }
      if (wantActive === true && program === undefined && !reference.length) throw new ProbeError(`the program of ${unit} is unknown: no ExecStart= in its unit file; give \`program\``);
      if (wantActive !== undefined) {
        const actual = running.length ? `active (${running.map((p) => p.exe).join(', ')})` : processes.length ? `not running its program (${[...new Set(processes.map((p) => p.exe || '?'))].join(', ')})` : 'inactive';
        assertions.push(assertFlag('active', wantActive, running.length > 0, actual));
      }
      if (check.enabled !== undefined) assertions.push(assertFlag('enabled', check.enabled, links.length > 0 && !masked, masked ? 'masked' : links.length ? 'enabled' : 'disabled'));
      return { assertions, evidence };
    },
  },
);
