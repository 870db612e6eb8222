import type { Logger } from 'pino';
import { SYSTEM, type AuditLog } from '../audit/index.js';
import { ConflictError, ExamlabError, InputError, NotFoundError, StorageError, engineUnavailable, errorMessage, type EngineUnavailableError } from '../util/errors.js';
import type { SessionRegistry } from '../access/index.js';
import type { LabService } from '../labs/index.js';
import type { ExamScenarios } from './exam-scenarios.js';
import type { CandidateRecord, CandidateUpdate, ExamRecord, ExamStore } from './exam-store.js';
import type { LabRecord, LabStore, RunRecord } from '../labs/index.js';
import { KeyedLock, Limiter } from '../util/limiter.js';
import { retryAttempts, type Clock } from '../util/retry.js';
import type { ExamMetrics } from './metrics.js';
import { offerLab } from './offer.js';

export interface PipelineSettings {
  /** Labs provisioned at once, all exams together. */
  provisionConcurrency: number;
  /** Labs graded at once. */
  gradingConcurrency: number;
  /** Tries per lab before it is reported failed (transient failures: engine, SSH, timeouts, a baseline not yet settled). */
  attempts: number;
  retryDelayMs: number;
}

export interface PipelineDeps {
  exams: ExamStore;
  labStore: LabStore;
  labs: LabService;
  audit: AuditLog;
  sessions: SessionRegistry;
  metrics: ExamMetrics;
  log: Logger;
  clock: Clock;
  settings: PipelineSettings;
  scenarios: ExamScenarios;
}

/** How often an engine that does not answer is asked again while work waits for it. */
export const ENGINE_RETRY_MS = 5_000;

/** What waits for an engine, and where that is said. */
interface EngineWait {
  log: Logger;
  /** What waits, for the log and the note: "grading". */
  doing: string;
  /** Says it where people look (the candidate's detail). */
  note: (detail: string) => void;
  waited?: (ms: number, down: EngineUnavailableError) => void;
  /** False: fail at once instead of waiting. */
  patient?: boolean;
}

/** The faults did not break what the checks test (or broke what must keep working): the lab is not offered. */
export class BaselineError extends ExamlabError {}

/**
 * The background work on candidates' labs: build, verify and offer a lab;
 * freeze and grade it at the end. Every step starts from what the store
 * says, so the same functions finish the work a killed daemon left
 * half-done. Work on one candidate is serialised; work on different
 * candidates runs side by side within the concurrency limits.
 *
 * A step the store refuses (its data directory full: a StorageError) is
 * not the lab's fault: it neither uses up an attempt nor fails the
 * candidate. The work stops where it is (the store still says what is
 * left to do) and is launched again by `resumeRefused`, which the
 * scheduler calls once the store takes writes again.
 */
export class LabPipeline {
  private readonly provisioning: Limiter;
  private readonly grading: Limiter;
  private readonly lock = new KeyedLock();
  private readonly tasks = new Set<Promise<unknown>>();
  private stopping = false;
  /** Work the store refused, by what it is: launched again once it takes writes. */
  private readonly refused = new Map<string, () => void>();
  private lastResume = 0;

  constructor(private readonly deps: PipelineDeps) {
    this.provisioning = new Limiter(deps.settings.provisionConcurrency);
    this.grading = new Limiter(deps.settings.gradingConcurrency);
  }

  /** Runs `task` alone for this candidate (after whatever is already queued for them). */
  exclusive<T>(examId: string, candidateId: string, task: () => Promise<T>): Promise<T> {
    return this.track(this.lock.run(`${examId}/${candidateId}`, task));
  }

  /** Queues the building of the candidate's lab; returns at once. */
  launchPrepare(examId: string, candidateId: string): void {
    void this.provisioning
      .run(() => this.exclusive(examId, candidateId, () => this.prepare(examId, candidateId)))
      .catch((err) => {
        if (!this.refusedByStore(err, `prepare ${examId}/${candidateId}`, () => this.launchPrepare(examId, candidateId), this.log(examId, candidateId))) {
          this.log(examId, candidateId).error({ err: errorMessage(err) }, 'lab preparation stopped');
        }
      });
  }

  /**
   * Launches again the work the store refused; called by the scheduler
   * once the store takes writes again (at most once per retry delay, so
   * that a store refusing again is not hammered). Returns how many.
   */
  resumeRefused(): number {
    const now = this.deps.clock.now();
    if (!this.refused.size || this.stopping || now - this.lastResume < this.deps.settings.retryDelayMs) return 0;
    this.lastResume = now;
    const again = [...this.refused.values()];
    this.refused.clear();
    this.deps.log.info({ steps: again.length }, 'the store takes writes again: resuming the work it refused');
    for (const launch of again) launch();
    return again.length;
  }

  /** Keeps work the store refused, to launch again; false for any other error. */
  private refusedByStore(err: unknown, key: string, again: () => void, log: Logger): boolean {
    if (!(err instanceof StorageError)) return false;
    if (this.stopping) return true; // redone at the next start, from what the store says
    if (!this.refused.has(key)) log.warn({ err: err.message }, 'the store refused this work: it is done again once the store takes writes');
    this.refused.set(key, again);
    return true;
  }

  /**
   * Tops the exam's spare labs up to its `spares`: each recorded at once
   * (so it counts while it waits its turn), then built, broken and verified
   * like a candidate's, and kept ready for no one until a reset takes it.
   * Queued behind the candidates' labs; returns at once.
   */
  launchSpares(examId: string): void {
    const { exams, labStore, labs } = this.deps;
    const exam = exams.exam(examId);
    if (exam.status !== 'preparing' && exam.status !== 'running') return;
    const missing = exam.spares - labStore.spares(examId).filter((l) => l.state !== 'failed').length;
    for (let i = 0; i < missing; i++) {
      let labId: string;
      try {
        labId = labs.create(this.deps.scenarios.of(exam), { examId }).id;
      } catch (err) {
        if (this.refusedByStore(err, `spares ${examId}`, () => this.launchSpares(examId), this.deps.log.child({ exam: examId }))) return;
        throw err;
      }
      this.launchSpare(examId, labId);
    }
  }

  private launchSpare(examId: string, labId: string): void {
    const log = this.deps.log.child({ exam: examId, lab: labId });
    void this.provisioning
      .run(() => this.track(this.buildSpare(examId, labId)))
      .catch((err) => {
        if (!this.refusedByStore(err, `spare ${labId}`, () => this.launchSpare(examId, labId), log)) log.error({ err: errorMessage(err) }, 'spare lab stopped');
      });
  }

  /** Removes the exam's spare labs (the exam is over, or they are no longer wanted). */
  async discardSpares(examId: string): Promise<void> {
    for (const spare of this.deps.labStore.spares(examId)) {
      await this.track(this.deps.labs.destroy(spare.id)).catch((err) => this.deps.log.child({ exam: examId, lab: spare.id }).error({ err: errorMessage(err) }, 'cannot remove a spare lab'));
    }
  }

  /** Builds a recorded spare; one whose exam is over by its turn is removed. A daemon stopping leaves it recorded: the next start replaces it. */
  private async buildSpare(examId: string, labId: string): Promise<void> {
    const { exams, labs, audit } = this.deps;
    if (this.stopping) return;
    const live = () => ['preparing', 'running'].includes(exams.exam(examId).status);
    if (!live()) {
      await labs.destroy(labId);
      return;
    }
    const log = this.deps.log.child({ exam: examId, lab: labId, spare: true });
    try {
      await labs.provision(labId);
      const baseline = await labs.verifyBaseline(labId);
      if (!baseline.ok) throw new BaselineError(`the broken state is not as the scenario says (${baseline.problems.map((p) => p.checkId).join(', ')})`);
    } catch (err) {
      if (err instanceof StorageError) throw err; // kept as recorded, built again once the store takes writes
      log.warn({ err: describe(err) }, 'spare lab could not be prepared');
      await labs.destroy(labId).catch(() => undefined);
      return;
    }
    // The exam may have ended while the spare was built.
    if (!live()) {
      await labs.destroy(labId);
      return;
    }
    audit.append({ actor: SYSTEM, action: 'lab.spare', examId, labId });
    log.info('spare lab ready');
  }

  /** Queues the freezing and grading of the candidate's lab; returns at once. */
  launchCompletion(examId: string, candidateId: string): void {
    void this.completion(examId, candidateId).catch((err) => {
      if (!(err instanceof StorageError)) this.log(examId, candidateId).error({ err: errorMessage(err) }, 'grading stopped');
    });
  }

  /**
   * Freezes (if needed) and grades the candidate's lab, then closes their
   * exam; resolves when done. An engine that does not answer is waited for,
   * unless `waitForEngines` is false (someone waits on the answer: a regrade
   * asked for over HTTP fails at once, saying which engine). Refused by the
   * store, it is done again once the store takes writes (and rejects now).
   */
  completion(examId: string, candidateId: string, options: { waitForEngines?: boolean } = {}): Promise<void> {
    return this.grading
      .run(() => this.exclusive(examId, candidateId, () => this.complete(examId, candidateId, options.waitForEngines ?? true)))
      .catch((err: unknown) => {
        this.refusedByStore(err, `complete ${examId}/${candidateId}`, () => this.launchCompletion(examId, candidateId), this.log(examId, candidateId));
        throw err;
      });
  }

  /** No new work starts; waits up to `timeoutMs` for the running work. What is left is redone at the next start. */
  async drain(timeoutMs: number): Promise<boolean> {
    this.stopping = true;
    const all = Promise.allSettled([...this.tasks]).then(() => true);
    const timeout = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), timeoutMs).unref());
    return Promise.race([all, timeout]);
  }

  get busy(): number {
    return this.tasks.size;
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.tasks.add(promise);
    void promise.finally(() => this.tasks.delete(promise)).catch(() => undefined);
    return promise;
  }

  private log(examId: string, candidateId: string, labId?: string): Logger {
    return this.deps.log.child({ exam: examId, candidate: candidateId, ...(labId ? { lab: labId } : {}) });
  }

  /** Builds the lab, verifies its broken state and offers it, retrying transient failures. */
  private async prepare(examId: string, candidateId: string): Promise<void> {
    const { exams, labs, labStore, settings, clock } = this.deps;
    const candidate = exams.candidate(examId, candidateId);
    if (candidate.phase !== 'provisioning' || this.stopping) return;
    const exam = exams.exam(examId);
    const lab = this.ensureLab(exam, candidate);
    const log = this.log(examId, candidateId, lab.id);
    let needsProvision = lab.state !== 'ready';
    // Progress notes, unless the candidate's exam was ended meanwhile (its own note stays).
    const note = (fields: CandidateUpdate) =>
      exams.atomically(() => (exams.candidate(examId, candidateId).phase === 'provisioning' ? exams.updateCandidate(examId, candidateId, fields) : exams.candidate(examId, candidateId)));
    const provisioning = () => exams.candidate(examId, candidateId).phase === 'provisioning';
    try {
      // An engine that stops answering is waited for, and the wait given back to a candidate whose clock runs (a reset).
      const outage = (ms: number, down: EngineUnavailableError) => {
        needsProvision = true;
        this.giveBackWait(examId, candidateId, lab.id, ms, down.engine);
      };
      await retryAttempts(
        (attempt) =>
          this.despiteOutages({ log, doing: 'building the lab', note: (detail) => note({ detail }), waited: outage }, async () => {
            // The next start redoes it; a candidate ended or reset while an engine was waited for needs it no more.
            if (this.stopping || !provisioning()) return;
            note({ attempts: attempt, detail: `building the lab (attempt ${attempt} of ${settings.attempts})` });
            const started = clock.now();
            if (needsProvision) await labs.provision(lab.id);
            note({ detail: 'verifying the broken state' });
            const baseline = await labs.verifyBaseline(lab.id);
            if (!baseline.ok) {
              throw new BaselineError(
                `the broken state is not as the scenario says (${baseline.problems.length} check(s))`,
                baseline.problems.map((p) => ({ where: `check ${p.checkId}`, message: `expected ${p.expected}, got ${p.status}: ${p.detail}` })),
              );
            }
            this.deps.metrics.labProvisioned((clock.now() - started) / 1000);
            await this.offer(exam, candidateId, lab.id);
          }),
        {
          first: candidate.attempts + 1,
          attempts: settings.attempts,
          delayMs: (attempt) => settings.retryDelayMs * attempt,
          // Not when stopping, for an error that another try cannot mend, or once the candidate was ended or reset meanwhile.
          // Nor when the store refused a step: that is no attempt of the lab's; the whole preparation is done again once it takes writes.
          retryable: (err) => !this.stopping && !(err instanceof StorageError) && isTransient(err) && provisioning(),
          onFailure: (err, attempt, again) => {
            if (this.stopping || err instanceof StorageError) return;
            this.deps.metrics.error('provisioning');
            log.warn({ attempt, err: describe(err) }, 'lab preparation failed');
            needsProvision = true;
            if (again) note({ detail: `attempt ${attempt} failed (${describe(err)}); retrying` });
          },
          clock,
        },
      );
    } catch (err) {
      if (err instanceof StorageError) throw err;
      if (this.stopping || !provisioning()) return;
      await this.fail(exam, exams.candidate(examId, candidateId), labStore.get(lab.id), describe(err));
    }
  }

  /** The candidate's current lab, or a new one (same seed: same values) when there is none left. */
  private ensureLab(exam: ExamRecord, candidate: CandidateRecord): LabRecord {
    const { exams, labStore, labs, audit } = this.deps;
    const existing = labStore.labOf(candidate);
    if (existing && existing.state !== 'destroyed') return existing;
    return exams.atomically(() => {
      const lab = labs.create(this.deps.scenarios.of(exam), { examId: exam.id, candidateId: candidate.id, candidateName: candidate.name, seed: candidate.seed, seat: candidate.position });
      exams.updateCandidate(exam.id, candidate.id, { labId: lab.id });
      audit.append({ actor: SYSTEM, action: 'lab.create', examId: exam.id, candidateId: candidate.id, labId: lab.id });
      return lab;
    });
  }

  /**
   * Hands the lab to the candidate: their clock starts now (or keeps its
   * deadline after a reset). Before a prepared exam's start the lab waits
   * ready instead: the start offers every ready lab at once.
   */
  private async offer(exam: ExamRecord, candidateId: string, labId: string): Promise<void> {
    const { exams, labStore, audit, clock } = this.deps;
    const offered = exams.atomically(() => {
      const c = exams.candidate(exam.id, candidateId);
      if (c.phase !== 'provisioning') return undefined;
      if (exams.exam(exam.id).status === 'preparing') {
        exams.moveCandidate(exam.id, candidateId, 'ready', { detail: null });
        audit.append({ actor: SYSTEM, action: 'lab.ready', examId: exam.id, candidateId, labId });
        return undefined;
      }
      const moved = offerLab({ exams, labStore }, exam, c, labId, new Date(clock.now()));
      audit.append({ actor: SYSTEM, action: 'lab.offer', examId: exam.id, candidateId, labId, detail: { deadline: moved.deadline } });
      return moved;
    });
    if (!offered) return;
    this.log(exam.id, candidateId, labId).info({ deadline: offered.deadline }, 'lab offered');
    // A revoked candidate whose lab was rebuilt stays locked out of the new one too.
    if (offered.revoked) await this.deps.labs.lockCandidate(labId);
  }

  private async fail(exam: ExamRecord, candidate: CandidateRecord, lab: LabRecord, reason: string): Promise<void> {
    const { exams, labs, audit } = this.deps;
    // A lab that failed its baseline is running: remove it. A failed provisioning already left nothing.
    if (lab.state === 'ready') await labs.destroy(lab.id).catch((err) => this.log(exam.id, candidate.id, lab.id).error({ err: errorMessage(err) }, 'cleanup failed'));
    exams.atomically(() => {
      exams.moveCandidate(exam.id, candidate.id, 'failed', { detail: reason });
      audit.append({ actor: SYSTEM, action: 'lab.fail', examId: exam.id, candidateId: candidate.id, labId: lab.id, detail: { reason } });
    });
    this.log(exam.id, candidate.id, lab.id).error({ reason }, 'lab could not be prepared');
  }

  /**
   * Ends a candidate's exam from wherever it stands: a running lab is
   * locked and frozen, a frozen one graded (final run) and paused again, a
   * graded one recorded; a lab never offered is removed. Also finishes a
   * regrade (lab frozen, candidate already ended).
   */
  private async complete(examId: string, candidateId: string, waitForEngines: boolean): Promise<void> {
    const { exams, labStore, labs, audit, clock } = this.deps;
    const candidate = exams.candidate(examId, candidateId);
    const exam = exams.exam(examId);
    let lab = labStore.labOf(candidate);
    const log = this.log(examId, candidateId, lab?.id);
    if (candidate.phase !== 'ending' && lab?.state !== 'frozen') {
      // Done already, but for what the store may have refused after the grade: the policy's removal, the exam's close.
      if (candidate.phase === 'ended' && lab?.state === 'graded' && !exam.keepLabs && labStore.runs(lab.id).find((r) => r.id === candidate.finalRunId)?.score?.complete) {
        await labs.destroy(lab.id);
        audit.append({ actor: SYSTEM, action: 'lab.destroy', examId, candidateId, labId: lab.id, detail: { policy: 'destroy once graded' } });
      }
      this.closeExamIfDone(examId);
      return;
    }

    if (!lab || !['running', 'frozen', 'graded'].includes(lab.state)) {
      // The candidate never had this lab: nothing to grade.
      if (lab && lab.state !== 'destroyed') await labs.destroy(lab.id);
      exams.atomically(() => {
        exams.moveCandidate(examId, candidateId, 'ended', { detail: lab ? `no result: the lab was never offered (${lab.state})` : 'no result: no lab' });
        audit.append({ actor: SYSTEM, action: 'candidate.ended', examId, candidateId, labId: lab?.id, detail: { graded: false } });
      });
      this.closeExamIfDone(examId);
      return;
    }

    if (lab.state === 'running') {
      this.deps.sessions.cut(examId, candidateId);
      await labs.lockCandidate(lab.id).catch((err) => log.warn({ err: errorMessage(err) }, 'cannot lock the candidate account (machine down?); the gateway refuses them anyway'));
      lab = exams.atomically(() => {
        const frozen = labStore.transition((lab as LabRecord).id, 'frozen', 'the candidate\'s exam is over');
        audit.append({ actor: SYSTEM, action: 'lab.freeze', examId, candidateId, labId: frozen.id });
        return frozen;
      });
    }

    const note = (detail: string | null) => void exams.updateCandidate(examId, candidateId, { detail });
    let run: RunRecord | undefined;
    if (lab.state === 'frozen') {
      // A final run left running here is one whose result the store refused (the candidate's work is serialised): said so.
      for (const stale of labStore.runs(lab.id).filter((r) => r.purpose === 'final' && r.status === 'running')) {
        labStore.failRun(stale.id, 'interrupted: its result could not be stored; graded again');
      }
      try {
        run = await this.gradeFrozen(lab, log, note, waitForEngines);
      } catch (err) {
        if (!this.stopping && !(err instanceof StorageError)) exams.updateCandidate(examId, candidateId, { detail: `grading failed (${errorMessage(err)}); regrade once the lab answers` });
        throw err;
      }
      const graded = run;
      exams.atomically(() => {
        labStore.transition(lab!.id, 'graded', `final run ${graded.id}`);
        const c = exams.candidate(examId, candidateId);
        if (c.phase === 'ending') exams.moveCandidate(examId, candidateId, 'ended', { finalRunId: graded.id, detail: null });
        else exams.updateCandidate(examId, candidateId, { finalRunId: graded.id, detail: null });
        audit.append({ actor: SYSTEM, action: 'lab.grade', examId, candidateId, labId: lab!.id, detail: { run: graded.id, points: graded.score?.points, maxPoints: graded.score?.maxPoints, complete: graded.score?.complete } });
      });
      log.info({ run: run.id, points: run.score?.points, maxPoints: run.score?.maxPoints, seconds: (clock.now() - Date.parse(run.startedAt)) / 1000 }, 'lab graded');
    } else {
      // Graded before a restart, not yet recorded as ended.
      run = latestFinal(labStore.runs(lab.id));
      exams.atomically(() => {
        if (exams.candidate(examId, candidateId).phase === 'ending') exams.moveCandidate(examId, candidateId, 'ended', { finalRunId: run?.id ?? null, detail: null });
      });
    }

    if (!exam.keepLabs && run?.score?.complete) {
      const graded = lab;
      await this.despiteOutages({ log, doing: 'removing the graded lab', note, waited: () => note(null), patient: waitForEngines }, () => labs.destroy(graded.id));
      audit.append({ actor: SYSTEM, action: 'lab.destroy', examId, candidateId, labId: lab.id, detail: { policy: 'destroy once graded' } });
    }
    this.closeExamIfDone(examId);
  }

  /** Grades a frozen lab: the machines run only for the grading, with the candidate locked out. */
  private async gradeFrozen(lab: LabRecord, log: Logger, note: (detail: string) => void, waitForEngines: boolean): Promise<RunRecord> {
    const { labs, settings, clock } = this.deps;
    return retryAttempts(
      () =>
        this.despiteOutages({ log, doing: 'grading', note, patient: waitForEngines }, async () => {
          note('grading');
          const started = clock.now();
          try {
            await labs.resume(lab.id);
            const run = await labs.grade(lab.id, 'final');
            this.deps.metrics.labGraded((clock.now() - started) / 1000, 'final');
            return run;
          } finally {
            await labs.pause(lab.id).catch((err) => log.error({ err: errorMessage(err) }, 'cannot pause the lab after grading'));
          }
        }),
      {
        attempts: settings.attempts,
        delayMs: (attempt) => settings.retryDelayMs * attempt,
        // An engine away is waited for above, or (not waiting) reported at once; a store refusing writes is done again once it takes them.
        retryable: (err) => !this.stopping && !(err instanceof StorageError) && !engineUnavailable(err),
        onFailure: (err, attempt, again) => {
          if (err instanceof StorageError) return;
          this.deps.metrics.error('grading');
          if (again) log.warn({ attempt, err: errorMessage(err) }, 'grading failed; retrying');
        },
        clock,
      },
    );
  }

  /**
   * Runs `task`; when an engine it needs does not answer (libvirtd being
   * restarted), says so (the log, and `note`: the candidate's detail) and
   * runs it again once the engine answers, however long that takes. An
   * engine away is waited out, never counted as a failed attempt; `waited`
   * is told how long each wait took. A daemon stopping ends the wait;
   * `patient: false` fails at once instead.
   */
  private async despiteOutages<T>(wait: EngineWait, task: () => Promise<T>): Promise<T> {
    for (;;) {
      try {
        return await task();
      } catch (err) {
        const down = engineUnavailable(err);
        if (!down || this.stopping || wait.patient === false) throw err;
        const ms = await this.engineBack(down, wait);
        wait.waited?.(ms, down);
      }
    }
  }

  /** Asks the engine every ENGINE_RETRY_MS until it answers, saying what waits; how long it took. */
  private async engineBack(down: EngineUnavailableError, { log, doing, note }: EngineWait): Promise<number> {
    const { clock, labs } = this.deps;
    const since = clock.now();
    note(`${doing} waits for the ${down.engine} engine (asked again every ${ENGINE_RETRY_MS / 1000} s since ${new Date(since).toISOString()}): ${down.message}`);
    log.warn({ engine: down.engine, err: down.message }, `${doing} waits for the ${down.engine} engine to answer`);
    for (;;) {
      await clock.sleep(ENGINE_RETRY_MS);
      if (this.stopping) throw down;
      try {
        await labs.pingEngine(down.engine);
        break;
      } catch {
        // still away
      }
    }
    const ms = clock.now() - since;
    log.info({ engine: down.engine, seconds: ms / 1000 }, `the ${down.engine} engine answers again; ${doing} goes on`);
    return ms;
  }

  /** A candidate whose clock runs while their lab is built (a reset) gets back the time an engine kept it waiting. */
  private giveBackWait(examId: string, candidateId: string, labId: string, ms: number, engine: string): void {
    const { exams, audit } = this.deps;
    exams.atomically(() => {
      const c = exams.candidate(examId, candidateId);
      if (c.phase !== 'provisioning' || !c.deadline) return;
      const deadline = new Date(Date.parse(c.deadline) + ms).toISOString();
      exams.updateCandidate(examId, candidateId, { deadline, extensionMs: c.extensionMs + ms });
      audit.append({ actor: SYSTEM, action: 'engine.outage', examId, candidateId, labId, detail: { engine, seconds: Math.round(ms / 1000), deadline } });
    });
  }

  /** The exam is over once every candidate's is. */
  closeExamIfDone(examId: string): void {
    const { exams, audit } = this.deps;
    const closed = exams.atomically(() => {
      const exam = exams.exam(examId);
      if (exam.status !== 'running' && exam.status !== 'ending') return false;
      if (!exams.candidates(examId).every((c) => c.phase === 'ended')) return false;
      exams.moveExam(examId, 'ended', { endedAt: new Date(this.deps.clock.now()).toISOString() });
      audit.append({ actor: SYSTEM, action: 'exam.ended', examId });
      return true;
    });
    if (closed) void this.discardSpares(examId);
  }
}

export function latestFinal(runs: readonly RunRecord[]): RunRecord | undefined {
  return runs.filter((r) => r.purpose === 'final' && r.status === 'done').at(-1);
}

/** Errors worth another try: the engine, SSH, timeouts, a baseline that may not have settled. Not a bad scenario or a state conflict. */
function isTransient(err: unknown): boolean {
  return !(err instanceof InputError || err instanceof ConflictError || err instanceof NotFoundError);
}

function describe(err: unknown): string {
  const details = err instanceof ExamlabError && err.details.length ? `: ${err.details.map((d) => `${d.where ? `${d.where}: ` : ''}${d.message}`).join('; ')}` : '';
  return `${errorMessage(err)}${details}`;
}
