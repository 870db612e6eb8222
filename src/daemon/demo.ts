import { SYSTEM } from '../audit/index.js';
import { formatTime, type DateStyle } from '../util/dates.js';
import type { Daemon } from './daemon.js';

export const DEMO_TITLE = 'examlab demo';
const DEMO_ROSTER = [
  { id: 'alice', name: 'Alice Martin' },
  { id: 'bruno', name: 'Bruno Petit' },
  { id: 'chloe', name: 'Chloé Durand' },
];

export interface DemoExam {
  examId: string;
  operatorToken: string;
  candidates: { id: string; name: string; token: string }[];
  resumed: boolean;
}

/**
 * The exam `make run` shows: three candidates on the default scenario,
 * started at once. A demo exam still under way is picked up rather than
 * built again (its candidates get new tokens, as the old ones were only
 * printed); the demo operator token is replaced at each run.
 */
export async function ensureDemoExam(daemon: Daemon, scenario = 'broken-workstation'): Promise<DemoExam> {
  daemon.tokens.revokeByName('demo');
  const operatorToken = daemon.tokens.issue('demo', 'operator', 'demo').token;
  daemon.audit.append({ actor: SYSTEM, action: 'token.create', detail: { name: 'demo', role: 'operator' } });
  const current = daemon.exams.exams({ statuses: ['scheduled', 'running'] }).find((e) => e.title === DEMO_TITLE);
  if (current) {
    if (current.status === 'scheduled') daemon.service.start(current.id, 'operator:demo');
    const candidates = daemon.exams.candidates(current.id).map((c) => daemon.service.reissueToken(current.id, c.id, 'operator:demo'));
    return { examId: current.id, operatorToken, candidates, resumed: true };
  }
  const { exam, tokens } = await daemon.service.create(
    { title: DEMO_TITLE, scenario: { name: scenario }, roster: DEMO_ROSTER, start: { policy: 'now' }, autoFreeze: true, keepLabs: true, mode: 'exam' },
    'operator:demo',
  );
  return { examId: exam.id, operatorToken, candidates: tokens, resumed: false };
}

/** Prints each candidate's lab as it becomes available (or fails), until all are settled. */
export function watchDemo(daemon: Daemon, examId: string, say: (line: string) => void, intervalMs = 2000): void {
  const told = new Map<string, string>();
  const exam = daemon.exams.exam(examId);
  const dates: DateStyle = { language: daemon.service.scenarioOf(exam).scenario.language, timeZone: exam.timeZone };
  const timer = setInterval(() => {
    try {
      const candidates = daemon.exams.candidates(examId);
      for (const c of candidates) {
        if (told.get(c.id) === c.phase || (c.phase !== 'active' && c.phase !== 'failed')) continue;
        told.set(c.id, c.phase);
        if (c.phase === 'active') say(`  ${c.id}: lab ready; the exam ends for them at ${formatTime(c.deadline as string, dates)} (${dates.timeZone})`);
        else say(`  ${c.id}: the lab could not be built (${c.detail}); reset it with POST /api/exams/${examId}/candidates/${c.id}/reset`);
      }
      if (candidates.every((c) => c.phase !== 'waiting' && c.phase !== 'provisioning')) clearInterval(timer);
    } catch {
      clearInterval(timer); // the daemon is stopping
    }
  }, intervalMs);
  timer.unref();
}
