import { randomBytes } from 'node:crypto';
import type { FragmentOutput } from './kinds/index.js';
import type { Toolbox } from './toolbox.js';
import { SshSession, type SshTarget } from '../ssh/client.js';

/**
 * One grading round trip to one machine: upload the toolbox and every
 * check's fragment over one SSH connection, run them all with the toolbox's
 * busybox, read back one line per check.
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

const PREAMBLE = `# examlab grading run: everything below uses the grader's busybox ($B) and probe ($P).
B="$D/busybox"; P="$D/examlab-probe"
export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
emit() { k=$1; shift; printf '%s=' "$k"; "$@" 2>/dev/null | $B base64 -w0; echo; }
emitv() { printf '%s=' "$1"; printf '%s' "$2" | $B base64 -w0; echo; }
`;

/** Builds the functions file and the runner script for one machine. */
export function buildScripts(fragments: readonly MachineFragment[], nonce: string): { checks: string; runner: string } {
  const functions = fragments.map((f, i) => `check_${i}() {\n${f.fragment}\n}`).join('\n');
  const checks = `${PREAMBLE}\n${functions}\n`;
  const calls = fragments.map((f, i) => `run_check ${i} ${Math.max(1, Math.ceil(f.timeoutMs / 1000))}`).join('\n');
  const runner = `D=$1; B="$D/busybox"
uptime_cs() { read u _ < /proc/uptime; echo "\${u%%.*}\${u##*.}"; }
$B chmod 700 "$D/busybox" "$D/examlab-probe" || exit 97
printf 'toolbox %s\\n' "$($B sha256sum "$D/busybox" "$D/examlab-probe" | $B cut -d' ' -f1 | $B tr '\\n' ' ')"
run_check() {
  $B rm -f "$D/rc"
  t0=$(uptime_cs)
  D="$D" $B timeout -s KILL "$2" $B sh -c '. "$D/checks.sh"; ( "check_$1" ); echo $? > "$D/rc"' sh "$1" >"$D/out" 2>"$D/err" </dev/null
  t1=$(uptime_cs)
  if [ -f "$D/rc" ]; then rc=$($B cat "$D/rc"); else rc=timeout; fi
  printf '@@${nonce} %s %s %s ' "$1" "$rc" "$(( (t1 - t0) * 10 ))"
  $B base64 -w0 <"$D/out"; printf ' '; $B base64 -w0 <"$D/err"; echo
}
${calls}
$B rm -rf "$D"
`;
  return { checks, runner };
}

/** Parses the runner's output; every fragment gets a run, with a problem when its line is missing or doubled. */
export function parseRunOutput(stdout: string, fragments: readonly MachineFragment[], nonce: string): FragmentRun[] {
  const lines = new Map<number, string[]>();
  for (const line of stdout.split('\n')) {
    if (!line.startsWith(`@@${nonce} `)) continue;
    const parts = line.split(' ');
    const index = Number(parts[1]);
    lines.set(index, [...(lines.get(index) ?? []), line]);
  }
  return fragments.map((f, i) => {
    const found = lines.get(i) ?? [];
    if (found.length !== 1) {
      return { problem: found.length ? 'the machine returned conflicting output for this check' : 'the machine returned no result for this check', durationMs: 0 };
    }
    const [, , rc = '', ms = '0', out = '', err = ''] = (found[0] as string).split(' ');
    const durationMs = Number(ms) || 0;
    if (rc === 'timeout') return { problem: `timed out after ${f.timeoutMs / 1000} s`, durationMs };
    const decode = (b64: string) => Buffer.from(b64, 'base64').toString('utf8');
    return { output: { exitCode: Number(rc), stdout: decode(out), stderr: decode(err) }, durationMs };
  });
}

/** Runs all fragments of one machine in one SSH round trip. Throws when the machine cannot be reached. */
export async function runOnMachine(target: SshTarget, toolbox: Toolbox, fragments: readonly MachineFragment[], connectTimeoutMs: number): Promise<FragmentRun[]> {
  const nonce = randomBytes(8).toString('hex');
  const dir = `.examlab-${randomBytes(6).toString('hex')}`;
  const { checks, runner } = buildScripts(fragments, nonce);
  const budget = fragments.reduce((sum, f) => sum + Math.max(1000, f.timeoutMs), 0) + 30_000;
  const session = await SshSession.connect(target, connectTimeoutMs);
  try {
    const path = await session.uploadToNewDir(dir, [
      { name: 'busybox', data: toolbox.busybox, mode: 0o700 },
      { name: 'examlab-probe', data: toolbox.probe, mode: 0o700 },
      { name: 'checks.sh', data: checks, mode: 0o600 },
      { name: 'run.sh', data: runner, mode: 0o600 },
    ]);
    const result = await session.exec(`${path}/busybox sh ${path}/run.sh ${path}`, { timeoutMs: budget });
    const received = /^toolbox (\S+) (\S+)/m.exec(result.stdout);
    if (!received || received[1] !== toolbox.hashes.busybox || received[2] !== toolbox.hashes.probe) {
      throw new Error(`the grader's toolbox did not arrive intact (exit ${result.exitCode}: ${result.stderr.trim().slice(0, 200) || 'no report'})`);
    }
    return parseRunOutput(result.stdout, fragments, nonce);
  } finally {
    session.close();
  }
}
