import type { Observation, ProbeRecord, ScriptOutput } from '../checks/index.js';
import { errorMessage } from '../util/errors.js';
import { decodeAnswers, encodable, encodeWork } from './probe-protocol.js';

/** What one check asks of its machine. */
export interface MachineItem {
  /** The check's own observations, by key. */
  probe?: Readonly<Record<string, Observation>>;
  /** A Windows guest's script (command checks). */
  script?: { text: string; timeoutMs: number };
  timeoutMs: number;
}

/** What one check got from its machine, or why it got nothing. */
export interface MachineAnswer {
  probe?: Map<string, ProbeRecord>;
  script?: ScriptOutput;
  problem?: string;
}

/** The two ways a machine is asked: the grader's probe, or (Windows) the machine's own PowerShell. */
export interface MachineRunner {
  /** Runs `examlab-probe serve` with `work` on its stdin; resolves with its stdout. Throws when the machine cannot be reached or the run overruns. */
  probe(work: string, options: { deadlineMs: number }): Promise<Buffer>;
  runScripts(scripts: readonly { text: string; timeoutMs: number }[]): Promise<(ScriptOutput | { problem: string })[]>;
}

/** The bound of one machine's probe run, whatever its checks' own time limits add up to. */
export const MAX_MACHINE_RUN_MS = 60_000;

/**
 * Every check of one machine in one round trip. Identical observations
 * (the account files several checks read) are asked once. Never throws: a
 * machine that cannot answer gives each of its checks a problem.
 */
export async function runMachine(items: readonly MachineItem[], runner: MachineRunner): Promise<MachineAnswer[]> {
  const scripts = items.filter((i) => i.script);
  if (scripts.length) return runScripts(items, runner);
  const ids = new Map<string, number>();
  const work = new Map<number, Observation>();
  const plans = items.map((item) => {
    const keys: [string, number][] = [];
    for (const [key, o] of Object.entries(item.probe ?? {})) {
      if (!o.args.every(encodable)) return { problem: `cannot ask the machine about ${o.args.map(String).join(' ')}: a value holds a tab or a line break` };
      const signature = JSON.stringify([o.verb, ...o.args]);
      let id = ids.get(signature);
      if (id === undefined) {
        id = ids.size + 1;
        ids.set(signature, id);
        work.set(id, o);
      }
      keys.push([key, id]);
    }
    return { keys };
  });
  if (!work.size) return plans.map((p) => ('problem' in p ? { problem: p.problem } : { probe: new Map() }));
  const deadlineMs = Math.min(MAX_MACHINE_RUN_MS, items.reduce((sum, i) => sum + i.timeoutMs, 0));
  let decoded: ReturnType<typeof decodeAnswers>;
  try {
    decoded = decodeAnswers(await runner.probe(encodeWork(work, deadlineMs), { deadlineMs }), new Set(work.keys()));
  } catch (err) {
    const problem = errorMessage(err);
    return plans.map(() => ({ problem }));
  }
  return plans.map((p) => {
    if ('problem' in p) return { problem: p.problem };
    const probe = new Map<string, ProbeRecord>();
    for (const [key, id] of p.keys) {
      const record = decoded.records.get(id);
      if (!record) return { problem: decoded.problem ?? 'the machine returned no answer for this check' };
      probe.set(key, record);
    }
    return { probe };
  });
}

async function runScripts(items: readonly MachineItem[], runner: MachineRunner): Promise<MachineAnswer[]> {
  const scripted = items.flatMap((item) => (item.script ? [item.script] : []));
  let outputs: (ScriptOutput | { problem: string })[];
  try {
    outputs = await runner.runScripts(scripted);
  } catch (err) {
    const problem = errorMessage(err);
    return items.map(() => ({ problem }));
  }
  let next = 0;
  return items.map((item) => {
    if (!item.script) return { problem: 'on a Windows guest only command checks run' };
    const out = outputs[next++];
    if (!out) return { problem: 'the machine returned no result for this check' };
    return 'problem' in out ? { problem: out.problem } : { script: out };
  });
}
