import { randomBytes } from 'node:crypto';
import tar from 'tar-stream';
import type { FragmentOutput } from '../checks/index.js';
import type { Toolbox } from './toolbox.js';
import type { MachineSession } from '../remote/index.js';

/**
 * One grading round trip to one machine: upload the toolbox and every
 * check's fragment over one SSH connection, run them all with the toolbox's
 * busybox, read back one line per check and an archive of their outputs.
 */

export interface MachineFragment {
  /** Check id; also names the shell function. */
  id: string;
  fragment: string;
  timeoutMs: number;
}

export interface FragmentRun {
  output?: FragmentOutput;
  /** Why there is no output: timeout, missing line. */
  problem?: string;
  durationMs: number;
}

// Facts are files (o/f.CHECK.KEY) that leave in the final archive: no encoding, no extra process.
const PREAMBLE = `# examlab grading run: everything below uses the grader's busybox ($B) and probe ($P).
B="$D/busybox"; P="$D/examlab-probe"
export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
emit() { k=$1; shift; "$@" >"$D/o/f.$C.$k" 2>/dev/null; }
emitv() { printf '%s' "$2" >"$D/o/f.$C.$1"; }
`;

/**
 * Builds the functions file and the runner script for one machine. Process
 * creation is the main cost on a loaded machine, so the runner spends as few
 * as it can: per check only `timeout` and the shell running its fragment;
 * all outputs leave together at the end, as one tar archive.
 */
export function buildScripts(fragments: readonly MachineFragment[], nonce: string): { checks: string; runner: string } {
  const functions = fragments.map((f, i) => `check_${i}() {\n${f.fragment}\n}`).join('\n');
  const checks = `${PREAMBLE}\n${functions}\n`;
  const calls = fragments.map((f, i) => `run_check ${i} ${timeoutSeconds(f)}`).join('\n');
  const runner = `D=$1; B="$D/busybox"
$B mkdir "$D/o"
$B sha256sum "$D/busybox" "$D/examlab-probe" | while read -r hash file; do printf '@@${nonce} hash %s %s\\n' "\${file##*/}" "$hash"; done
run_check() {
  read -r u _ </proc/uptime; t0=\${u%%.*}\${u##*.}
  D="$D" C="$1" $B timeout -s KILL "$2" $B sh -c '. "$D/checks.sh"; "check_$C"' >"$D/o/out.$1" 2>"$D/o/err.$1" </dev/null
  rc=$?
  read -r u _ </proc/uptime; t1=\${u%%.*}\${u##*.}
  printf '@@${nonce} check %s %s %s\\n' "$1" "$rc" "$(( (t1 - t0) * 10 ))"
}
${calls}
printf '@@${nonce} outputs '; $B tar -c -C "$D/o" . | $B base64 -w0; echo
$B rm -rf "$D"
`;
  return { checks, runner };
}

function timeoutSeconds(f: MachineFragment): number {
  return Math.max(1, Math.ceil(f.timeoutMs / 1000));
}

interface RunReport {
  hashes: Map<string, string>;
  checks: Map<number, { rc: number; ms: number }[]>;
  outputs: Map<string, string>;
}

/** Reads the runner's report: toolbox hashes, one line per check, the archive of outputs. */
export async function readReport(stdout: string, nonce: string): Promise<RunReport> {
  const report: RunReport = { hashes: new Map(), checks: new Map(), outputs: new Map() };
  const prefix = `@@${nonce} `;
  for (const line of stdout.split('\n')) {
    if (!line.startsWith(prefix)) continue;
    const [type = '', a = '', b = '', c = ''] = line.slice(prefix.length).split(' ');
    if (type === 'hash') report.hashes.set(a, b);
    if (type === 'check') report.checks.set(Number(a), [...(report.checks.get(Number(a)) ?? []), { rc: Number(b), ms: Number(c) }]);
    if (type === 'outputs') report.outputs = await untar(Buffer.from(a, 'base64'));
  }
  return report;
}

async function untar(archive: Buffer): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const extract = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
      stream.on('end', () => {
        files.set(header.name.replace(/^\.\//, ''), Buffer.concat(chunks).toString('utf8'));
        next();
      });
      stream.resume();
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  extract.end(archive);
  await done;
  return files;
}

/** One result per fragment; a missing, doubled or killed one is a problem, not an output. */
export function fragmentRuns(report: RunReport, fragments: readonly MachineFragment[]): FragmentRun[] {
  return fragments.map((f, i) => {
    const lines = report.checks.get(i) ?? [];
    if (lines.length !== 1) {
      return { problem: lines.length ? 'the machine returned conflicting output for this check' : 'the machine returned no result for this check', durationMs: 0 };
    }
    const { rc, ms } = lines[0] as { rc: number; ms: number };
    // busybox timeout kills with SIGKILL (exit 137): when that happens at the limit, it was the limit.
    if (rc === 137 && ms >= timeoutSeconds(f) * 1000 - 250) return { problem: `timed out after ${f.timeoutMs / 1000} s`, durationMs: ms };
    const stdout = report.outputs.get(`out.${i}`);
    const stderr = report.outputs.get(`err.${i}`);
    if (stdout === undefined || stderr === undefined) return { problem: 'the machine returned no output for this check', durationMs: ms };
    const prefix = `f.${i}.`;
    const facts = new Map([...report.outputs].filter(([name]) => name.startsWith(prefix)).map(([name, value]) => [name.slice(prefix.length), value]));
    return { output: { exitCode: rc, stdout, stderr, facts }, durationMs: ms };
  });
}

/** Runs all fragments of one machine in one round trip on an open root session. */
export async function runOnMachine(session: MachineSession, toolbox: Toolbox, fragments: readonly MachineFragment[]): Promise<FragmentRun[]> {
  const nonce = randomBytes(8).toString('hex');
  const dir = `.examlab-${randomBytes(6).toString('hex')}`;
  const { checks, runner } = buildScripts(fragments, nonce);
  const budget = fragments.reduce((sum, f) => sum + Math.max(1000, f.timeoutMs), 0) + 30_000;
  const path = await session.uploadToNewDir(dir, [
    { name: 'busybox', data: toolbox.busybox, mode: 0o700 },
    { name: 'examlab-probe', data: toolbox.probe, mode: 0o700 },
    { name: 'checks.sh', data: checks, mode: 0o600 },
    { name: 'run.sh', data: runner, mode: 0o600 },
  ]);
  const result = await session.exec(`${path}/busybox sh ${path}/run.sh ${path}`, { timeoutMs: budget });
  const report = await readReport(result.stdout, nonce);
  if (report.hashes.get('busybox') !== toolbox.hashes.busybox || report.hashes.get('examlab-probe') !== toolbox.hashes.probe) {
    throw new Error(`the grader's toolbox did not arrive intact (exit ${result.exitCode}: ${result.stderr.trim().slice(0, 200) || 'no report'})`);
  }
  return fragmentRuns(report, fragments);
}
