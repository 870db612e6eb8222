import type { SessionRegistry } from '../access/index.js';
import type { LabRecord, LabService, LabStore } from '../labs/index.js';
import type { Clock } from '../util/retry.js';
import type { ExamScenarios } from './exam-scenarios.js';
import type { CandidateRecord, ExamRecord, ExamStore, ReportRecord } from './exam-store.js';
import { candidateSummary, examSummary } from './views.js';

export interface ExamReaderDeps {
  exams: ExamStore;
  scenarios: ExamScenarios;
  labStore: LabStore;
  labs: LabService;
  clock: Clock;
  /** Who is connected, for the room view. */
  sessions?: SessionRegistry;
}

/** What a candidate's own page shows while their lab is theirs. */
export interface CandidateHome {
  exam: ExamRecord;
  candidate: CandidateRecord;
  lab?: LabRecord;
  /** Set while the lab is in use: the machines they log in to, the sudo password and their instructions. */
  active?: {
    logins: { name: string; hostname: string; user: string }[];
    sudoPassword: string;
    instructions: string | null;
    /** The instructions in every language the scenario has them in (Markdown). */
    instructionsByLanguage: Partial<Record<'fr' | 'en', string>>;
  };
  report?: ReportRecord;
}

/**
 * What the faces read about exams (the operator's room view, the jury's
 * candidate detail, a candidate's own page). Commands go through the
 * ExamService; nothing here changes state.
 */
export class ExamReader {
  constructor(private readonly deps: ExamReaderDeps) {}

  exam(examId: string): ExamRecord {
    return this.deps.exams.exam(examId);
  }

  /** An exam with its progress and every candidate's state. */
  summary(examId: string) {
    const { exams, labStore, clock } = this.deps;
    const candidates = exams.candidates(examId);
    const labs = new Map<string, LabRecord>();
    for (const c of candidates) {
      const lab = labStore.labOf(c);
      if (lab) labs.set(lab.id, lab);
    }
    const exam = exams.exam(examId);
    const presence = (candidateId: string) => this.deps.sessions?.presence(examId, candidateId) ?? { connected: 0 };
    return examSummary(exam, candidates, labs, labStore.spares(examId), clock.now(), this.deps.scenarios.of(exam).scenario.language, presence);
  }

  summaries() {
    return this.deps.exams.exams().map((e) => this.summary(e.id));
  }

  /** One candidate as staff see them: state, their lab's history and runs, marks and report. */
  candidateDetail(examId: string, candidateId: string) {
    const { exams, labStore, clock } = this.deps;
    const c = exams.candidate(examId, candidateId);
    const lab = labStore.labOf(c);
    return {
      ...candidateSummary(c, lab, clock.now(), this.deps.sessions?.presence(examId, candidateId)),
      labEvents: lab ? labStore.events(lab.id) : [],
      runs: lab ? labStore.runs(lab.id).map((r) => ({ id: r.id, purpose: r.purpose, status: r.status, startedAt: r.startedAt, finishedAt: r.finishedAt, error: r.error, score: r.score })) : [],
      marks: exams.marks(examId, candidateId),
      report: exams.report(examId, candidateId),
    };
  }

  /** What the candidate themself may see: never the checks, never another candidate. */
  candidateHome(examId: string, candidateId: string): CandidateHome {
    const { exams, labStore, labs } = this.deps;
    const exam = exams.exam(examId);
    const candidate = exams.candidate(examId, candidateId);
    const lab = labStore.labOf(candidate);
    const report = exams.report(examId, candidateId);
    if (candidate.phase !== 'active' || lab?.state !== 'running') return { exam, candidate, lab, report };
    const scenario = labs.render(lab);
    const logins = (lab.topology?.machines ?? []).flatMap((m) => (m.loginUser ? [{ name: m.name, hostname: m.hostname, user: m.loginUser }] : []));
    return {
      exam,
      candidate,
      lab,
      active: { logins, sudoPassword: lab.secrets.candidatePassword, instructions: scenario.instructions[scenario.language] ?? null, instructionsByLanguage: scenario.instructions },
      report,
    };
  }

  report(examId: string, candidateId: string): ReportRecord | undefined {
    return this.deps.exams.report(examId, candidateId);
  }

  now(): number {
    return this.deps.clock.now();
  }
}
