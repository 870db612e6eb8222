import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { SYSTEM, type Actor, type AuditLog } from '../audit/index.js';
import { hashCandidateToken, newCandidateToken, UnauthenticatedError, UnknownTokenError, type AdmittedCandidate, type CandidateDirectory, type SessionRegistry } from '../access/index.js';
import { ConflictError, ExamlabError, InputError, NotAllowedError, NotFoundError, StorageError, errorMessage } from '../util/errors.js';
import type { LabService } from '../labs/index.js';
import { drawOf, rosterProblems, type LoadedScenario, type Scenario, type ScenarioLibrary } from '../scenario/index.js';
import type { SshTarget } from '../remote/index.js';
import type { CandidateRecord, ExamMode, ExamRecord, ExamStore, MarkRecord, ReportRecord } from './exam-store.js';
import type { LabRecord, LabStore, RunRecord } from '../labs/index.js';
import { hostTimeZone } from '../util/dates.js';
import { makeDirs } from '../util/dirs.js';
import { newId } from '../util/ids.js';
import { writeFileWhole } from '../util/storage.js';
import type { Clock } from '../util/retry.js';
import type { ExamScenarios } from './exam-scenarios.js';
import { latestFinal, type LabPipeline } from './lab-pipeline.js';
import { offerLab } from './offer.js';
import { candidateResult, type CandidateResult } from './results.js';
import { checkRosterJson, type RosterEntry } from './roster.js';
import { hasFinished } from './states.js';

export type StartPolicy = { policy: 'now' } | { policy: 'manual' } | { policy: 'at'; at: string };

export interface NewExam {
  title?: string;
  /** A scenario of the scenarios folder, by name, or a scenario's YAML text. */
  scenario: { name: string } | { yaml: string };
  roster: RosterEntry[];
  /** Default: the scenario's duration. */
  durationMs?: number;
  start: StartPolicy;
  /** Build and verify every lab now, access shut, so that the start opens them all at once (not with start "now"). */
  prepare?: boolean;
  /** Labs kept ready for no one while the exam is prepared or runs: a reset swaps one in at once. Default 0. */
  spares?: number;
  autoFreeze: boolean;
  keepLabs: boolean;
  mode: ExamMode;
  /** IANA time zone for the dates people read; default: the host's. */
  timeZone?: string;
}

export interface IssuedToken {
  id: string;
  name: string;
  token: string;
}

export interface ExamServiceDeps {
  exams: ExamStore;
  labStore: LabStore;
  labs: LabService;
  audit: AuditLog;
  sessions: SessionRegistry;
  pipeline: LabPipeline;
  scenarios: ExamScenarios;
  clock: Clock;
  log: Logger;
  /** The scenarios an exam can name. */
  library: ScenarioLibrary;
  /** Where uploaded scenarios are kept (one file per exam). */
  uploadsDir: string;
  /** Loads and validates a scenario file (images checked against the catalog). */
  loadScenario(file: string): Promise<LoadedScenario>;
}

const SCENARIO_NAME = /^[a-z0-9][a-z0-9._-]*$/;
const MAX_EXTENSION_MS = 24 * 3_600_000;
/** The reason an exam's end gives when the scheduler ends a candidate at their deadline. */
const DEADLINE_REACHED = 'deadline reached';

/**
 * Exams: create, start, end; what the operator does to one candidate
 * (extend, reset, grade now, revoke, restore, end, regrade); the jury's
 * marks and the candidates' reports. Each command persists its state
 * change and its audit record in one transaction before anything is
 * acknowledged; the lab work then runs in the pipeline.
 */
export class ExamService implements CandidateDirectory {
  /** Scheduled starts that failed, reported once rather than at every tick. */
  private readonly failedStarts = new Set<string>();
  /** Candidates cut off at their deadline while the store refused to record their end (by exam/candidate): when. */
  private readonly cutAtDeadline = new Map<string, number>();

  constructor(private readonly deps: ExamServiceDeps) {}

  get pipeline(): LabPipeline {
    return this.deps.pipeline;
  }

  private now(): string {
    return new Date(this.deps.clock.now()).toISOString();
  }

  async create(input: NewExam, actor: Actor): Promise<{ exam: ExamRecord; tokens: IssuedToken[] }> {
    const { exams, audit } = this.deps;
    const roster = checkRosterJson(input.roster);
    const id = newId();
    const loaded = await this.loadScenarioFor(id, input.scenario);
    refuseUnplaceableNames(loaded.scenario, roster);
    if (input.start.policy === 'at' && Date.parse(input.start.at) <= this.deps.clock.now()) {
      throw new InputError('the start time is in the past', [{ where: 'start.at', message: `${input.start.at} is before now (${this.now()})` }]);
    }
    const spares = input.spares ?? 0;
    if (spares > 0) refuseSparesFor(loaded);
    await this.refuseBeyondCapacity(loaded, roster.length + spares);
    const tokens = roster.map((c) => ({ id: c.id, name: c.name, token: newCandidateToken() }));
    const exam = exams.atomically(() => {
      const created = exams.createExam(
        {
          id,
          title: input.title ?? loaded.scenario.title,
          scenarioId: loaded.scenario.id,
          scenarioFile: loaded.file,
          scenarioText: loaded.text,
          mode: input.mode,
          durationMs: input.durationMs ?? loaded.scenario.duration,
          startPolicy: input.start.policy,
          startAt: input.start.policy === 'at' ? new Date(input.start.at).toISOString() : undefined,
          autoFreeze: input.autoFreeze,
          keepLabs: input.keepLabs,
          timeZone: input.timeZone ?? hostTimeZone(),
          spares,
          createdBy: actor,
        },
        roster.map((c, i) => ({ ...c, seed: newId(16), tokenHash: hashCandidateToken((tokens[i] as IssuedToken).token) })),
      );
      audit.append({ actor, action: 'exam.create', examId: id, detail: { scenario: loaded.scenario.id, candidates: roster.length, start: input.start } });
      return created;
    });
    this.deps.scenarios.remember(id, loaded);
    this.deps.log.info({ exam: id, scenario: loaded.scenario.id, candidates: roster.length }, 'exam created');
    if (input.start.policy === 'now') return { exam: this.start(id, actor), tokens };
    if (input.prepare) return { exam: this.prepare(id, actor), tokens };
    return { exam, tokens };
  }

  /** Scenarios an exam can be made from (examlab's folder and the trainers' folders). */
  scenarioNames(): string[] {
    return this.deps.library.names();
  }

  private async loadScenarioFor(examId: string, source: NewExam['scenario']): Promise<LoadedScenario> {
    if ('name' in source) {
      const file = SCENARIO_NAME.test(source.name) ? this.deps.library.fileOf(source.name) : undefined;
      if (!file) throw new InputError(`unknown scenario "${source.name}"`, [{ where: 'scenario', message: `known: ${this.scenarioNames().join(', ') || '(none)'}` }]);
      return this.deps.loadScenario(file);
    }
    // An uploaded scenario is kept as a file, like any other, so its labs can always be traced to it.
    makeDirs(this.deps.uploadsDir);
    const file = join(this.deps.uploadsDir, `exam-${examId}.yaml`);
    writeFileWhole(file, source.yaml);
    try {
      const loaded = await this.deps.loadScenario(file);
      // An uploaded scenario has no folder of its own: an upload step could only copy the server's files into a lab.
      const uploads = (['setup', 'faults', 'solution'] as const).flatMap((section) =>
        loaded.scenario[section].flatMap((step, i) => (step.upload !== undefined ? [{ where: `scenarioYaml ${section}[${i}].upload`, message: 'upload steps need a scenario in the scenarios folder' }] : [])),
      );
      if (uploads.length) throw new InputError('an uploaded scenario cannot copy files from the server', uploads);
      return loaded;
    } catch (err) {
      rmSync(file, { force: true });
      throw err;
    }
  }

  /** The exam's scenario, from the text it was created with. */
  scenarioOf(exam: ExamRecord): LoadedScenario {
    return this.deps.scenarios.of(exam);
  }

  /** Lets a candidate in by their token while their exam allows it (the authenticator asks). */
  admit(tokenHash: string): AdmittedCandidate {
    const candidate = this.deps.exams.candidateByTokenHash(tokenHash);
    if (!candidate) throw new UnknownTokenError('unknown or revoked token');
    const denied = candidateDenial(this.deps.exams.exam(candidate.examId), candidate, this.deps.clock.now());
    if (denied) throw denied;
    return { examId: candidate.examId, candidateId: candidate.id };
  }

  /** Replaces the roster of an exam that has not started; every candidate gets a new token. */
  setRoster(examId: string, entries: RosterEntry[], actor: Actor): IssuedToken[] {
    const { exams, audit } = this.deps;
    const roster = checkRosterJson(entries);
    refuseUnplaceableNames(this.scenarioOf(exams.exam(examId)).scenario, roster);
    const tokens = roster.map((c) => ({ id: c.id, name: c.name, token: newCandidateToken() }));
    exams.atomically(() => {
      const exam = exams.exam(examId);
      if (exam.status !== 'scheduled') throw new ConflictError(`exam ${examId} is ${exam.status}; the roster can only change before the start and before labs are prepared`);
      exams.replaceRoster(examId, roster.map((c, i) => ({ ...c, seed: newId(16), tokenHash: hashCandidateToken((tokens[i] as IssuedToken).token) })));
      audit.append({ actor, action: 'exam.roster', examId, detail: { candidates: roster.length } });
    });
    return tokens;
  }

  /** Refuses to start an exam whose room the host can no longer hold (what else runs there may have grown since it was created). */
  async checkRoom(examId: string): Promise<void> {
    const exam = this.deps.exams.exam(examId);
    if (exam.status === 'scheduled') await this.refuseBeyondCapacity(this.scenarioOf(exam), this.deps.exams.candidates(examId).length + exam.spares);
  }

  /** A room larger than the host can hold is refused now, never discovered at the eleventh candidate. */
  private async refuseBeyondCapacity(loaded: LoadedScenario, candidates: number): Promise<void> {
    const room = await this.deps.labs.capacity(loaded);
    if (room && candidates > room.labs) {
      throw new ConflictError(`${room.hosts ? `the ${room.hosts} lab hosts` : 'this host'} can take ${room.labs} more labs of ${loaded.scenario.id} and the exam has ${candidates} candidates (limited by ${room.limitedBy}); see examlab doctor`);
    }
  }

  /**
   * Prepares the exam ahead of its start: one lab per candidate, built,
   * broken and verified in the background while the candidates are still
   * locked out. Each lab then waits ready, with no clock running.
   */
  prepare(examId: string, actor: Actor): ExamRecord {
    const { exams, audit, pipeline } = this.deps;
    const exam = exams.atomically(() => {
      const current = exams.exam(examId);
      if (current.status !== 'scheduled') throw new ConflictError(`exam ${examId} is ${current.status}; only a scheduled exam can be prepared`);
      const candidates = exams.candidates(examId);
      if (!candidates.length) throw new ConflictError(`exam ${examId} has no candidates`);
      const preparing = exams.moveExam(examId, 'preparing');
      for (const c of candidates) exams.moveCandidate(examId, c.id, 'provisioning', { detail: 'queued (prepared before the start)' });
      audit.append({ actor, action: 'exam.prepare', examId, detail: { candidates: candidates.length } });
      return preparing;
    });
    this.deps.log.info({ exam: examId }, 'exam being prepared');
    for (const c of exams.candidates(examId)) pipeline.launchPrepare(examId, c.id);
    pipeline.launchSpares(examId);
    return exam;
  }

  /**
   * Starts the exam. Scheduled: one lab per candidate, built in the
   * background, each offered (its clock started) when verified. Prepared:
   * every ready lab is offered now, in one step, every clock starting at
   * the same instant; labs still being built are offered when they are.
   */
  start(examId: string, actor: Actor): ExamRecord {
    const { exams, labStore, audit, pipeline } = this.deps;
    const { exam, toBuild, offered } = exams.atomically(() => {
      const current = exams.exam(examId);
      if (current.status !== 'scheduled' && current.status !== 'preparing') throw new ConflictError(`exam ${examId} is ${current.status}; only a scheduled or prepared exam can start`);
      const candidates = exams.candidates(examId);
      if (!candidates.length) throw new ConflictError(`exam ${examId} has no candidates`);
      const at = new Date(this.deps.clock.now());
      const started = exams.moveExam(examId, 'running', { startedAt: at.toISOString() });
      const waiting = candidates.filter((c) => c.phase === 'waiting');
      for (const c of waiting) exams.moveCandidate(examId, c.id, 'provisioning', { detail: 'queued' });
      const ready = candidates.filter((c) => c.phase === 'ready');
      for (const c of ready) if (c.labId) offerLab({ exams, labStore }, current, c, c.labId, at);
      audit.append({ actor, action: 'exam.start', examId, detail: { candidates: candidates.length, offered: ready.length, building: candidates.length - ready.length } });
      return { exam: started, toBuild: waiting, offered: ready };
    });
    this.deps.log.info({ exam: examId, offered: offered.length }, 'exam started');
    for (const c of toBuild) pipeline.launchPrepare(examId, c.id);
    pipeline.launchSpares(examId);
    // A candidate revoked while their lab waited stays locked out of it.
    for (const c of offered.filter((o) => o.revoked)) {
      const lab = labStore.labOf(c);
      if (lab) void this.deps.labs.lockCandidate(lab.id).catch((err) => this.deps.log.warn({ exam: examId, candidate: c.id, err: (err as Error).message }, 'cannot lock a revoked candidate out of their lab'));
    }
    return exam;
  }

  /** Ends the exam for everyone: access is cut at once; labs are frozen and graded in the background. */
  end(examId: string, actor: Actor): ExamRecord {
    const { exams, audit } = this.deps;
    const ending = exams.atomically(() => {
      const exam = exams.exam(examId);
      if (exam.status === 'ended') throw new ConflictError(`exam ${examId} has already ended`);
      const candidates = exams.candidates(examId);
      if (exam.status === 'scheduled') {
        for (const c of candidates) exams.moveCandidate(examId, c.id, 'ended', { detail: 'the exam ended before it started' });
        audit.append({ actor, action: 'exam.end', examId, detail: { before: 'start' } });
        exams.moveExam(examId, 'ended', { endedAt: this.now() });
        return [];
      }
      if (exam.status === 'running' || exam.status === 'preparing') exams.moveExam(examId, 'ending');
      const open = candidates.filter((c) => !hasFinished(c.phase));
      for (const c of open) exams.moveCandidate(examId, c.id, 'ending', { detail: `exam ended by ${actor}` });
      audit.append({ actor, action: 'exam.end', examId, detail: { candidates: open.length } });
      return candidates.filter((c) => c.phase !== 'ended');
    });
    for (const c of ending) {
      this.deps.sessions.cut(examId, c.id, 'ended');
      this.deps.pipeline.launchCompletion(examId, c.id);
    }
    void this.deps.pipeline.discardSpares(examId);
    this.deps.pipeline.closeExamIfDone(examId);
    return exams.exam(examId);
  }

  /** Ends one candidate's exam now (deadline reached, or the operator's decision). */
  endCandidate(examId: string, candidateId: string, actor: Actor, reason: string): CandidateRecord {
    const { exams, audit } = this.deps;
    const key = `${examId}/${candidateId}`;
    const cutAt = this.cutAtDeadline.get(key);
    const moved = exams.atomically(() => {
      const c = exams.candidate(examId, candidateId);
      if (hasFinished(c.phase)) return undefined;
      const next = exams.moveCandidate(examId, candidateId, 'ending', { detail: reason });
      // At the deadline, its time is on the record, and when access was cut if the store could not say so then.
      const timing = reason === DEADLINE_REACHED ? { deadline: c.deadline, ...(cutAt !== undefined ? { accessCutAt: new Date(cutAt).toISOString() } : {}) } : {};
      audit.append({ actor, action: 'candidate.end', examId, candidateId, labId: c.labId, detail: { reason, ...timing } });
      return next;
    });
    this.cutAtDeadline.delete(key);
    if (!moved) return exams.candidate(examId, candidateId);
    this.deps.sessions.cut(examId, candidateId, reason === DEADLINE_REACHED ? 'time-up' : 'ended');
    this.deps.pipeline.launchCompletion(examId, candidateId);
    return moved;
  }

  /** More time for one candidate (before or during their exam). */
  extend(examId: string, candidateId: string, ms: number, actor: Actor): CandidateRecord {
    const { exams, audit } = this.deps;
    if (ms <= 0 || ms > MAX_EXTENSION_MS) throw new InputError('invalid extension', [{ where: 'duration', message: 'must be more than 0 and at most 24h' }]);
    return exams.atomically(() => {
      const c = exams.candidate(examId, candidateId);
      if (hasFinished(c.phase)) throw new ConflictError(`candidate ${candidateId} has finished (${c.phase}); their time can no longer be extended`);
      const deadline = c.deadline ? new Date(Date.parse(c.deadline) + ms).toISOString() : undefined;
      const updated = exams.updateCandidate(examId, candidateId, { extensionMs: c.extensionMs + ms, deadline });
      audit.append({ actor, action: 'candidate.extend', examId, candidateId, labId: c.labId, detail: { ms, deadline } });
      return updated;
    });
  }

  /**
   * Gives the candidate a lab in its initial broken state; their deadline is
   * kept. With a spare ready, it is swapped in at once (its own values) and
   * the old lab removed behind; otherwise their lab is rebuilt (same values).
   */
  reset(examId: string, candidateId: string, actor: Actor): CandidateRecord {
    const { exams, audit } = this.deps;
    const swapped = this.swapInSpare(examId, candidateId, actor);
    if (swapped) return swapped;
    const moved = exams.atomically(() => {
      const { c } = this.resettable(examId, candidateId);
      // A lab waiting ready is built again like a used one (the pipeline would take it as it is).
      const lab = c.phase === 'ready' ? this.deps.labStore.labOf(c) : undefined;
      if (lab?.state === 'ready') this.deps.labStore.transition(lab.id, 'provisioning', `reset by ${actor}`);
      const next = exams.moveCandidate(examId, candidateId, 'provisioning', { attempts: 0, detail: `reset by ${actor}` });
      audit.append({ actor, action: 'candidate.reset', examId, candidateId, labId: c.labId });
      return next;
    });
    this.deps.sessions.cut(examId, candidateId, 'reset');
    this.deps.pipeline.launchPrepare(examId, candidateId);
    return moved;
  }

  private resettable(examId: string, candidateId: string): { exam: ExamRecord; c: CandidateRecord } {
    const exam = this.deps.exams.exam(examId);
    if (exam.status !== 'running' && exam.status !== 'preparing') throw new ConflictError(`exam ${examId} is ${exam.status}; labs are reset only while it is prepared or runs`);
    const c = this.deps.exams.candidate(examId, candidateId);
    if (!['active', 'failed', 'ready'].includes(c.phase)) throw new ConflictError(`candidate ${candidateId} is ${c.phase}; only a ready, active or failed lab can be reset`);
    return { exam, c };
  }

  /** A reset as a swap: a ready spare becomes the candidate's lab in one step. Undefined when no spare is ready. */
  private swapInSpare(examId: string, candidateId: string, actor: Actor): CandidateRecord | undefined {
    const { exams, labStore, labs, audit, pipeline } = this.deps;
    const swap = exams.atomically(() => {
      const { exam, c } = this.resettable(examId, candidateId);
      const spare = labStore.spares(examId).find((l) => l.state === 'ready');
      if (!spare) return undefined;
      labs.assign(spare.id, { id: c.id, name: c.name });
      const fields = { labId: spare.id, seed: spare.seed, attempts: 0, detail: null };
      let next: CandidateRecord;
      if (exam.status === 'preparing') {
        next = c.phase === 'ready' ? exams.updateCandidate(examId, c.id, fields) : (exams.moveCandidate(examId, c.id, 'provisioning'), exams.moveCandidate(examId, c.id, 'ready', fields));
      } else if (c.phase === 'active') {
        labStore.transition(spare.id, 'running', 'offered to the candidate');
        next = exams.updateCandidate(examId, c.id, fields);
      } else {
        exams.moveCandidate(examId, c.id, 'provisioning');
        next = offerLab({ exams, labStore }, exam, c, spare.id, new Date(this.deps.clock.now()), fields);
      }
      audit.append({ actor, action: 'candidate.reset', examId, candidateId, labId: spare.id, detail: { spare: true, replaced: c.labId ?? null } });
      return { next, old: labStore.labOf(c) };
    });
    if (!swap) return undefined;
    this.deps.sessions.cut(examId, candidateId, 'reset');
    this.deps.log.info({ exam: examId, candidate: candidateId, lab: swap.next.labId }, 'reset: a spare lab swapped in');
    const { old } = swap;
    if (old && old.state !== 'destroyed') {
      void pipeline
        .exclusive(examId, candidateId, async () => {
          await labs.destroy(old.id);
          audit.append({ actor: SYSTEM, action: 'lab.destroy', examId, candidateId, labId: old.id, detail: { policy: 'replaced by a spare' } });
        })
        .catch((err) => this.deps.log.error({ exam: examId, candidate: candidateId, lab: old.id, err: (err as Error).message }, 'cannot remove the replaced lab'));
    }
    if (swap.next.revoked && swap.next.labId) void labs.lockCandidate(swap.next.labId).catch(() => undefined);
    pipeline.launchSpares(examId);
    return swap.next;
  }

  /** Grades the candidate's lab as it is now, without ending anything (practice, or a check by the operator). */
  async gradeNow(examId: string, candidateId: string, actor: Actor): Promise<RunRecord> {
    const { exams, labs, audit, pipeline } = this.deps;
    return pipeline.exclusive(examId, candidateId, async () => {
      const c = exams.candidate(examId, candidateId);
      const lab = this.deps.labStore.labOf(c);
      if (c.phase !== 'active' || lab?.state !== 'running') throw new ConflictError(`candidate ${candidateId} is ${c.phase}; only a lab in use can be graded now (a finished one is regraded)`);
      const run = await labs.grade(lab.id, 'grade');
      audit.append({ actor, action: 'candidate.grade', examId, candidateId, labId: lab.id, detail: { run: run.id, points: run.score?.points, maxPoints: run.score?.maxPoints } });
      return run;
    });
  }

  /** Cuts the candidate off: their token and sessions stop working and their lab account is locked. The lab keeps running. */
  async revoke(examId: string, candidateId: string, actor: Actor, reason: string | undefined): Promise<CandidateRecord> {
    const { exams, audit, pipeline, labs, labStore } = this.deps;
    const c = exams.atomically(() => {
      const current = exams.candidate(examId, candidateId);
      if (hasFinished(current.phase)) throw new ConflictError(`candidate ${candidateId} has finished; their access is already closed`);
      const updated = exams.updateCandidate(examId, candidateId, { revoked: true });
      audit.append({ actor, action: 'candidate.revoke', examId, candidateId, labId: current.labId, detail: { reason } });
      return updated;
    });
    this.deps.sessions.cut(examId, candidateId, 'revoked');
    await pipeline.exclusive(examId, candidateId, async () => {
      const lab = labStore.labOf(c);
      if (lab?.state !== 'running') return;
      // The gateway already refuses them; a machine that does not answer cannot be used either.
      await labs.lockCandidate(lab.id).catch((err) => {
        this.deps.log.warn({ exam: examId, candidate: candidateId, lab: lab.id, err: errorMessage(err) }, 'cannot lock the candidate account in the lab');
        audit.append({ actor: SYSTEM, action: 'lab.lock.failed', examId, candidateId, labId: lab.id, detail: { reason: errorMessage(err) } });
      });
    });
    return exams.candidate(examId, candidateId);
  }

  /** Lifts a revocation. */
  async restore(examId: string, candidateId: string, actor: Actor): Promise<CandidateRecord> {
    const { exams, audit, pipeline, labs, labStore } = this.deps;
    const c = exams.atomically(() => {
      const current = exams.candidate(examId, candidateId);
      if (!current.revoked) throw new ConflictError(`candidate ${candidateId} has not been revoked`);
      if (hasFinished(current.phase)) throw new ConflictError(`candidate ${candidateId} has finished; access cannot be restored`);
      const updated = exams.updateCandidate(examId, candidateId, { revoked: false });
      audit.append({ actor, action: 'candidate.restore', examId, candidateId, labId: current.labId });
      return updated;
    });
    await pipeline.exclusive(examId, candidateId, async () => {
      const lab = labStore.labOf(c);
      if (lab?.state !== 'running') return;
      // Their token works again at once; a machine that does not answer keeps the account locked until it does, and says so.
      await labs.unlockCandidate(lab.id).catch((err) => {
        this.deps.log.warn({ exam: examId, candidate: candidateId, lab: lab.id, err: errorMessage(err) }, 'cannot unlock the candidate account in the lab');
        audit.append({ actor: SYSTEM, action: 'lab.unlock.failed', examId, candidateId, labId: lab.id, detail: { reason: errorMessage(err) } });
      });
    });
    return exams.candidate(examId, candidateId);
  }

  /** Grades a finished candidate's frozen lab again (the candidate stays locked out); resolves with the new run. */
  async regrade(examId: string, candidateId: string, actor: Actor): Promise<RunRecord> {
    const { exams, labStore, audit, pipeline } = this.deps;
    const labId = exams.atomically(() => {
      const c = exams.candidate(examId, candidateId);
      if (!hasFinished(c.phase)) throw new ConflictError(`candidate ${candidateId} is ${c.phase}; only a finished exam is regraded (use grade now while it runs)`);
      const lab = labStore.labOf(c);
      if (!lab || !['frozen', 'graded'].includes(lab.state)) {
        throw new ConflictError(`candidate ${candidateId}'s lab is ${lab?.state ?? 'missing'}; only a kept (frozen or graded) lab can be regraded`);
      }
      if (lab.state === 'graded') labStore.transition(lab.id, 'frozen', `regrade requested by ${actor}`);
      audit.append({ actor, action: 'candidate.regrade', examId, candidateId, labId: lab.id });
      return lab.id;
    });
    // Someone waits for this answer: an engine that does not answer fails it at once, naming the engine.
    await pipeline.completion(examId, candidateId, { waitForEngines: false });
    const run = latestFinal(labStore.runs(labId));
    if (!run) throw new ConflictError(`the regrade of ${candidateId}'s lab did not finish; see the candidate's detail`);
    return run;
  }

  /** Destroys the labs kept after an ended exam (results stay); returns their ids. */
  async releaseLabs(examId: string, actor: Actor): Promise<string[]> {
    const { exams, labStore, labs, audit, pipeline } = this.deps;
    const exam = exams.exam(examId);
    if (exam.status !== 'ended') throw new ConflictError(`exam ${exam.id} is ${exam.status}; its labs are released once it has ended`);
    const destroyed: string[] = [];
    for (const c of exams.candidates(exam.id)) {
      const lab = labStore.labOf(c);
      if (!lab || lab.state === 'destroyed') continue;
      await pipeline.exclusive(exam.id, c.id, () => labs.destroy(lab.id));
      audit.append({ actor, action: 'lab.destroy', examId: exam.id, candidateId: c.id, labId: lab.id });
      destroyed.push(lab.id);
    }
    return destroyed;
  }

  /** A new access token for the candidate; the old one stops working at once. */
  reissueToken(examId: string, candidateId: string, actor: Actor): IssuedToken {
    const { exams, audit } = this.deps;
    const token = newCandidateToken();
    const c = exams.atomically(() => {
      const current = exams.candidate(examId, candidateId);
      exams.updateCandidate(examId, candidateId, { tokenHash: hashCandidateToken(token) });
      audit.append({ actor, action: 'candidate.token', examId, candidateId });
      return current;
    });
    this.deps.sessions.cut(examId, candidateId, 'revoked');
    return { id: c.id, name: c.name, token };
  }

  /** The jury's mark on one manual criterion: a level of its rubric. */
  mark(examId: string, candidateId: string, criterionId: string, level: string, comment: string | undefined, actor: Actor): MarkRecord {
    const { exams, audit } = this.deps;
    const exam = exams.exam(examId);
    exams.candidate(examId, candidateId);
    const criteria = this.scenarioOf(exam).scenario.manualCriteria;
    const criterion = criteria.find((c) => c.id === criterionId);
    if (!criterion) throw new NotFoundError(`the scenario of exam ${examId} has no manual criterion "${criterionId}"; known: ${criteria.map((c) => c.id).join(', ') || '(none)'}`);
    const chosen = criterion.levels.find((l) => l.id === level);
    if (!chosen) throw new InputError(`unknown level "${level}" for criterion ${criterionId}`, [{ where: 'level', message: `one of ${criterion.levels.map((l) => l.id).join(', ')}` }]);
    return exams.atomically(() => {
      const mark = exams.setMark({ examId, candidateId, criterionId, level, points: chosen.points, comment, markedBy: actor });
      audit.append({ actor, action: 'mark.set', examId, candidateId, detail: { criterion: criterionId, level, points: chosen.points } });
      return mark;
    });
  }

  /** The candidate's written intervention report; accepted while their exam runs. */
  submitReport(examId: string, candidateId: string, report: { diagnosis: string; actions: string; result: string }, actor: Actor): ReportRecord {
    const { exams, audit } = this.deps;
    return exams.atomically(() => {
      const c = exams.candidate(examId, candidateId);
      if (c.phase !== 'active') throw new ConflictError(`reports are accepted while the exam runs for you; you are ${c.phase}`);
      const saved = exams.saveReport({ examId, candidateId, ...report });
      audit.append({ actor, action: 'report.submit', examId, candidateId, labId: c.labId, detail: { revision: saved.revision } });
      return saved;
    });
  }

  results(examId: string): CandidateResult[] {
    const exam = this.deps.exams.exam(examId);
    return this.deps.exams.candidates(examId).map((c) => this.resultOf(exam, c));
  }

  result(examId: string, candidateId: string): CandidateResult {
    return this.resultOf(this.deps.exams.exam(examId), this.deps.exams.candidate(examId, candidateId));
  }

  private resultOf(exam: ExamRecord, c: CandidateRecord): CandidateResult {
    const runs = c.labId ? this.deps.labStore.runs(c.labId) : [];
    const run = runs.find((r) => r.id === c.finalRunId);
    const scenario = this.scenarioOf(exam).scenario;
    const lab = this.deps.labStore.labOf(c);
    return candidateResult(scenario, c, run, this.deps.exams.marks(exam.id, c.id), this.deps.exams.report(exam.id, c.id), lab ? drawOf(lab.variables) : {});
  }

  /** Where the gateway connects a candidate: their own lab, as their login user, with the lab's candidate key. */
  labTarget(examId: string, candidateId: string, machine: string | undefined): { lab: LabRecord; machine: string; target: SshTarget } {
    const c = this.deps.exams.candidate(examId, candidateId);
    const denied = candidateDenial(this.deps.exams.exam(examId), c, this.deps.clock.now());
    if (denied) throw denied;
    if (c.phase === 'provisioning') throw new ConflictError('your lab is being prepared; try again in a minute');
    if (c.phase === 'failed') throw new ConflictError('your lab could not be prepared; tell the exam supervisor');
    const lab = this.deps.labStore.labOf(c);
    if (!lab || lab.state !== 'running') throw new ConflictError('your lab is not available right now');
    const logins = (lab.topology?.machines ?? []).filter((m) => m.loginUser);
    const chosen = machine ? logins.find((m) => m.name === machine) : logins[0];
    if (!chosen) {
      throw new NotFoundError(machine ? `no machine "${machine}" you can log in to; yours: ${logins.map((m) => m.name).join(', ')}` : 'no machine of this lab accepts candidate logins');
    }
    return {
      lab,
      machine: chosen.name,
      target: { host: chosen.address, username: chosen.loginUser as string, privateKey: lab.secrets.candidatePrivateKey, hostKey: chosen.hostKey, tunnel: this.deps.labs.sshTunnel(lab, chosen.name) },
    };
  }

  /**
   * A system actor's deadline sweep and scheduled starts; called by the
   * scheduler. What the store refuses (its disk full) is left as it is in
   * the store, so the next tick tries it again; a StorageError is thrown
   * once everything else was done. A candidate whose end the store refuses
   * is cut off all the same: their sessions closed now, their token refused
   * from the deadline on (see candidateDenial).
   */
  tick(now: number): void {
    const { exams } = this.deps;
    const at = new Date(now).toISOString();
    let refused: StorageError | undefined;
    for (const exam of exams.exams({ statuses: ['scheduled', 'preparing'] })) {
      if (exam.startPolicy === 'at' && exam.startAt && exam.startAt <= at && !this.failedStarts.has(exam.id)) {
        try {
          this.start(exam.id, SYSTEM);
        } catch (err) {
          // Started by a later tick: clocks start when the labs are offered, so a late start costs no candidate time.
          if (err instanceof StorageError) {
            refused ??= err;
            continue;
          }
          this.failedStarts.add(exam.id);
          this.deps.log.error({ exam: exam.id, err: (err as Error).message }, 'scheduled start failed; start it by hand');
        }
      }
    }
    for (const c of exams.dueCandidates(at)) {
      try {
        this.endCandidate(c.examId, c.id, SYSTEM, DEADLINE_REACHED);
      } catch (err) {
        if (!(err instanceof StorageError)) throw err;
        refused ??= err;
        const key = `${c.examId}/${c.id}`;
        if (this.cutAtDeadline.has(key)) continue;
        this.cutAtDeadline.set(key, now);
        const sessions = this.deps.sessions.cut(c.examId, c.id, 'time-up');
        this.deps.log.warn({ exam: c.examId, candidate: c.id, deadline: c.deadline, sessions }, 'time is up: access cut; the end is recorded, and the lab graded, once the store takes writes again');
      }
    }
    if (refused) throw refused;
  }
}

/**
 * Why a candidate may not use their token now, or undefined if they may.
 * Their deadline counts, not only their phase: past it they are out even
 * before the scheduler has recorded their end (which a full disk can hold up).
 */
function candidateDenial(exam: ExamRecord, c: CandidateRecord, now: number): ExamlabError | undefined {
  if (exam.status === 'scheduled' || exam.status === 'preparing') return new UnauthenticatedError(`exam ${exam.id} has not started yet`);
  if (hasFinished(c.phase) || exam.status === 'ended') return new UnauthenticatedError('your exam is over: this token is no longer valid');
  if (exam.autoFreeze && c.deadline && Date.parse(c.deadline) <= now) return new UnauthenticatedError('time is up: your exam is over');
  if (c.revoked) return new NotAllowedError('your access has been revoked; see the exam supervisor');
  return undefined;
}

/** A spare is built before anyone is known: a scenario whose lab depends on the candidate (their id or name in a machine, a step or a check) cannot have spares. */
function refuseSparesFor(loaded: LoadedScenario): void {
  const { machines, setup, faults, checks, solution } = loaded.scenario;
  if (/\{\{\s*candidate\./.test(JSON.stringify({ machines, setup, faults, checks, solution }))) {
    throw new InputError('this scenario cannot have spare labs', [{ where: 'spares', message: `${loaded.scenario.id} uses the candidate's id or name to build its labs; a spare is built before its candidate is known` }]);
  }
}

/** A roster whose names the scenario cannot place (a "/" in a name it puts in a path) is refused now, not at that candidate's lab. */
function refuseUnplaceableNames(scenario: Scenario, roster: readonly RosterEntry[]): void {
  const problems = rosterProblems(scenario, roster);
  if (problems.length) throw new InputError(`candidates: the scenario cannot use ${problems.length === 1 ? 'one entry' : `${problems.length} entries`} of this roster`, problems);
}
