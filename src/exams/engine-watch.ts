import { SYSTEM } from '../audit/index.js';
import { errorMessage } from '../util/errors.js';
import type { LabRecord } from '../labs/index.js';
import { withTimeout } from '../util/retry.js';
import { rebuildLostLab, type PickUpDeps } from './reconciler.js';

/** How long an engine may take to answer a ping before it counts as down. */
const PING_TIMEOUT_MS = 5_000;
/** How much earlier than the watch's own bound an engine's record of a machine's stop is believed (see `downFrom`). */
const ENGINE_STOP_WINDOW_MS = 60_000;

export interface EngineWatchDeps extends PickUpDeps {
  /** A lab host (of several) silent this long has lost its labs: they are built again on the others. */
  hostLostAfterMs: number;
}

/** An engine that stopped answering: since when, and why. */
export interface EngineOutage {
  provider: string;
  since: string;
  error: string;
}

/** What was done to the labs of an engine that answers again. */
export interface EngineRecovery {
  provider: string;
  seconds: number;
  /** Labs whose machines all ran through the outage (live restore): left as they were. */
  kept: number;
  /** Labs whose machines had stopped: started again, the candidates' files on their disks. */
  restarted: number;
  /** Labs whose machines were gone: built again. */
  rebuilt: number;
  /** Active candidates given the time their machines were down. */
  compensated: number;
  /** Gradings and preparations that failed during the outage, launched again. */
  relaunched: number;
  /** Labs that had moved to other hosts meanwhile: their remains removed from this one. */
  removed: number;
}

interface LiveLab {
  examId: string;
  candidateId: string;
  phase: string;
  lab: LabRecord | undefined;
}

const candidateKey = (l: LiveLab) => `${l.examId}/${l.candidateId}`;

/**
 * Watches the engines that hold live labs while the daemon runs (at start,
 * the reconciler does this job). An engine that stops answering (restarted,
 * crashed) is said at once, in the log, the audit log and the exams' views;
 * the exam goes on. When it answers again, every live lab on it is looked
 * at: machines that kept running (Docker's live restore, libvirt's VMs) are
 * left alone, stopped ones are started again (the candidate's files are on
 * their disks), missing ones are rebuilt; active candidates whose machines
 * were down get that time back; gradings and lab preparations that failed
 * meanwhile are launched again. An engine that answers is also asked which
 * machines are stopped: those of live labs are started again.
 */
export class EngineWatch {
  private readonly down = new Map<string, EngineOutage>();
  /** Per engine down: the candidates whose lab had already failed when it went (theirs is the operator's call, not the outage's). */
  private readonly failedBefore = new Map<string, Set<string>>();
  /** Lab hosts whose labs were moved to the others during their current outage. */
  private readonly givenUp = new Set<string>();
  /** Per engine, when its stopped machines were last listed. */
  private readonly lastLook = new Map<string, number>();
  /** Labs with stopped machines: since when they were down (see `downFrom`). */
  private readonly stoppedSince = new Map<string, number>();
  /** Labs whose machines are being started again. */
  private readonly starting = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private busy = false;

  constructor(
    private readonly deps: EngineWatchDeps,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => void this.tick(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The engines that do not answer now. */
  outages(): EngineOutage[] {
    return [...this.down.values()];
  }

  /** One look at every engine that holds a live lab (or was down); returns what was recovered. */
  async tick(): Promise<EngineRecovery[]> {
    if (this.busy) return [];
    this.busy = true;
    try {
      const live = this.liveLabs();
      const engines = new Set([...live.flatMap((l) => this.enginesOf(l)), ...this.down.keys()]);
      const recovered: EngineRecovery[] = [];
      for (const name of engines) {
        const failure = await this.ping(name);
        if (failure) {
          this.noteDown(name, failure, live);
          await this.giveUpIfLost(name, live);
        } else if (this.down.has(name)) recovered.push(await this.recover(name, live));
        else await this.startStopped(name, live);
      }
      return recovered;
    } catch (err) {
      this.deps.log.error({ err: errorMessage(err) }, 'engine watch failed');
      return [];
    } finally {
      this.busy = false;
    }
  }

  /**
   * Machines of a live lab found stopped while their engine answers: the
   * candidate powered one off, or rebooted a container (its init then
   * exits), or the engine restarted between two looks (too quickly to be
   * seen not answering) and took its machines with it. They are started
   * again, as a PC's power button would, with the candidate's files; an
   * active candidate gets back the time they were down (see `downFrom`).
   * The start waits for whatever else is under way for the
   * candidate (an end, a reset) and is skipped if that changed the lab.
   */
  private async startStopped(engine: string, live: readonly LiveLab[]): Promise<void> {
    const { clock, log } = this.deps;
    const previousLook = this.lastLook.get(engine) ?? clock.now();
    let stopped: Map<string, number | undefined>;
    try {
      stopped = await this.stoppedLabs(engine);
    } catch (err) {
      log.warn({ engine, err: errorMessage(err) }, 'cannot list the stopped machines; looked at again at the next check');
      return;
    }
    this.lastLook.set(engine, clock.now());
    for (const l of live) {
      const labId = l.lab?.id;
      if (!labId || !stopped.has(labId) || (l.phase !== 'active' && l.phase !== 'ready') || !this.enginesOf(l).includes(engine)) continue;
      if (!this.stoppedSince.has(labId)) this.stoppedSince.set(labId, this.downFrom(stopped.get(labId), previousLook));
      if (this.starting.has(labId)) continue;
      this.starting.add(labId);
      void this.startLab(l.examId, l.candidateId, labId)
        .catch((err) => log.child({ exam: l.examId, candidate: l.candidateId, lab: labId }).error({ err: errorMessage(err) }, 'cannot start the stopped machines; tried again at the next check'))
        .finally(() => this.starting.delete(labId));
    }
  }

  /** The labs with stopped machines on an engine, with the earliest time one stopped where the engine records it. */
  private async stoppedLabs(engine: string): Promise<Map<string, number | undefined>> {
    const stopped = await withTimeout((await this.deps.providers.get(engine)).stoppedMachines(), PING_TIMEOUT_MS, `the stopped machines on the ${engine} engine`);
    const labs = new Map<string, number | undefined>();
    for (const m of stopped) {
      const at = m.since ? Date.parse(m.since) : NaN;
      const known = labs.get(m.labId);
      labs.set(m.labId, Number.isNaN(at) ? known : Math.min(at, known ?? at));
    }
    return labs;
  }

  /**
   * Since when a lab's machines were down: when the engine says they
   * stopped, else the watch's own bound (the last look that saw them
   * running). The engine's word is taken at most a minute before that bound:
   * a stopping engine stops its machines within it, and a lab host's clock
   * further off is not believed.
   */
  private downFrom(engineSays: number | undefined, bound: number): number {
    if (engineSays === undefined) return bound;
    return Math.max(bound - ENGINE_STOP_WINDOW_MS, Math.min(engineSays, this.deps.clock.now()));
  }

  private startLab(examId: string, candidateId: string, labId: string): Promise<void> {
    const { exams, labStore, labs, audit, pipeline, clock, log } = this.deps;
    return pipeline.exclusive(examId, candidateId, async () => {
      const c = exams.findCandidate(examId, candidateId);
      if (!c || (c.phase !== 'active' && c.phase !== 'ready') || labStore.labOf(c)?.id !== labId) return void this.stoppedSince.delete(labId);
      const machines = Object.entries(await labs.machineStates(labId)).flatMap(([name, state]) => (state === 'stopped' ? [name] : []));
      if (!machines.length) return void this.stoppedSince.delete(labId);
      await labs.resume(labId);
      const gapMs = clock.now() - (this.stoppedSince.get(labId) ?? clock.now());
      this.stoppedSince.delete(labId);
      const compensated = c.phase === 'active' && this.giveBack(examId, candidateId, gapMs, 'machine stopped');
      audit.append({ actor: SYSTEM, action: 'lab.restart', examId, candidateId, labId, detail: { machines, seconds: Math.round(gapMs / 1000), compensated } });
      log.warn({ exam: examId, candidate: candidateId, lab: labId, machines }, 'stopped machines started again');
    });
  }

  private async ping(name: string): Promise<string | undefined> {
    try {
      await withTimeout((await this.deps.providers.get(name)).ping(), PING_TIMEOUT_MS, `the ${name} engine`);
      return undefined;
    } catch (err) {
      return errorMessage(err);
    }
  }

  private noteDown(provider: string, error: string, live: readonly LiveLab[]): void {
    if (this.down.has(provider)) return;
    const outage = { provider, since: new Date(this.deps.clock.now()).toISOString(), error };
    this.down.set(provider, outage);
    this.failedBefore.set(provider, new Set(live.filter((l) => l.phase === 'failed').map(candidateKey)));
    this.deps.log.error(outage, `the ${provider} engine does not answer: live labs on it are watched until it does`);
    this.deps.audit.append({ actor: SYSTEM, action: 'engine.down', detail: { ...outage } });
  }

  /**
   * A lab host (one of several) silent past `hostLostAfterMs`: its live labs
   * are built again on the others (placement skips a host that does not
   * answer), their candidates given the time since it went silent, and
   * preparations that failed on it launched again. Once per outage.
   */
  private async giveUpIfLost(key: string, live: readonly LiveLab[]): Promise<void> {
    const { providers, clock, log, audit } = this.deps;
    const outage = this.down.get(key);
    const host = providers.hostOfEngine(key);
    if (!outage || !host || this.givenUp.has(key) || providers.hosts().length < 2) return;
    const silentMs = clock.now() - Date.parse(outage.since);
    if (silentMs < this.deps.hostLostAfterMs) return;
    this.givenUp.add(key);
    let moved = 0;
    for (const l of live.filter((x) => x.lab?.host === host.key)) {
      if (l.phase === 'active' || l.phase === 'ready') {
        rebuildLostLab(this.deps, l.examId, l.candidateId, l.lab, `with lab host ${key}`);
        if (l.phase === 'active') this.giveBack(l.examId, l.candidateId, silentMs);
        moved++;
      } else if (l.phase === 'failed' && !this.failedBefore.get(key)?.has(candidateKey(l))) {
        this.deps.exams.moveCandidate(l.examId, l.candidateId, 'provisioning', { attempts: 0, detail: `lab host ${key} stopped answering; building the lab on another` });
        this.deps.pipeline.launchPrepare(l.examId, l.candidateId);
        moved++;
      }
    }
    log.error({ host: key, seconds: Math.round(silentMs / 1000), labs: moved }, 'lab host lost: its labs are built again on the others');
    audit.append({ actor: SYSTEM, action: 'host.lost', detail: { host: key, since: outage.since, labs: moved } });
  }

  private async recover(provider: string, live: readonly LiveLab[]): Promise<EngineRecovery> {
    const { exams, labs, audit, pipeline, clock, log } = this.deps;
    const outage = this.down.get(provider) as EngineOutage;
    const since = Date.parse(outage.since);
    const report: EngineRecovery = { provider, seconds: 0, kept: 0, restarted: 0, rebuilt: 0, compensated: 0, relaunched: 0, removed: 0 };
    // A stopping engine may go on answering, even listing its machines as running, while it stops them: when they stopped is the engine's to say, else the last look before the outage.
    const stopTimes = await this.stoppedLabs(provider).catch(() => new Map<string, number | undefined>());
    const downSince = (labId: string) => this.downFrom(stopTimes.get(labId), Math.min(since, this.stoppedSince.get(labId) ?? this.lastLook.get(provider) ?? since));
    report.removed = await this.removeMovedLabs(provider);
    for (const l of live.filter((x) => this.enginesOf(x).includes(provider))) {
      const clog = log.child({ exam: l.examId, candidate: l.candidateId, lab: l.lab?.id });
      try {
        if (l.phase === 'active' || l.phase === 'ready') {
          const labId = (l.lab as LabRecord).id;
          const states = Object.values(await labs.machineStates(labId));
          let downFrom = downSince(labId);
          if (!states.length || states.includes('missing')) {
            rebuildLostLab(this.deps, l.examId, l.candidateId, l.lab, `when the ${provider} engine stopped`);
            report.rebuilt++;
          } else if (states.some((s) => s !== 'running')) {
            await labs.resume(labId);
            report.restarted++;
          } else {
            report.kept++;
            // Running all along, but reached only through the engine: nobody could open a session meanwhile.
            if (!(await this.reachedThroughEngine(provider))) continue;
            downFrom = since;
          }
          this.stoppedSince.delete(labId);
          // Their machines were down until now: that time is given back (a rebuilt lab keeps its deadline too).
          if (l.phase === 'active' && this.giveBack(l.examId, l.candidateId, clock.now() - downFrom)) report.compensated++;
        } else if (l.phase === 'ending') {
          pipeline.launchCompletion(l.examId, l.candidateId);
          report.relaunched++;
        } else if (l.phase === 'failed' && !this.failedBefore.get(provider)?.has(candidateKey(l))) {
          exams.moveCandidate(l.examId, l.candidateId, 'provisioning', { attempts: 0, detail: `the ${provider} engine stopped while the lab was built; building it again` });
          pipeline.launchPrepare(l.examId, l.candidateId);
          report.relaunched++;
        }
      } catch (err) {
        // The engine may have gone again: the lab is looked at once more at the next recovery, or by the jury.
        clog.error({ err: errorMessage(err) }, 'could not pick the lab up after the engine came back');
      }
    }
    report.seconds = Math.round((clock.now() - since) / 1000);
    this.down.delete(provider);
    this.failedBefore.delete(provider);
    this.givenUp.delete(provider);
    this.lastLook.set(provider, clock.now());
    audit.append({ actor: SYSTEM, action: 'engine.up', detail: { ...report, since: outage.since } });
    log.warn(report, `the ${provider} engine answers again after ${report.seconds} s`);
    return report;
  }

  /** Labs found on a returning engine that now live on another host (moved while it was away): removed from it. */
  private async removeMovedLabs(key: string): Promise<number> {
    const host = this.deps.providers.hostOfEngine(key);
    if (!host) return 0;
    let removed = 0;
    for (const id of await (await this.deps.providers.get(key)).listLabIds()) {
      const lab = this.deps.labStore.find(id);
      if (!lab?.host || lab.host === host.key) continue;
      await this.deps.labs.removeRemains(id, key);
      removed++;
    }
    return removed;
  }

  private async reachedThroughEngine(provider: string): Promise<boolean> {
    return (await this.deps.providers.get(provider)).reachedThroughEngine === true;
  }

  private giveBack(examId: string, candidateId: string, gapMs: number, reason = 'engine outage'): boolean {
    const { exams, audit } = this.deps;
    return exams.atomically(() => {
      const c = exams.findCandidate(examId, candidateId);
      if (!c?.deadline || (c.phase !== 'active' && c.phase !== 'provisioning')) return false;
      exams.updateCandidate(examId, candidateId, { deadline: new Date(Date.parse(c.deadline) + gapMs).toISOString(), extensionMs: c.extensionMs + gapMs });
      audit.append({ actor: SYSTEM, action: 'candidate.compensated', examId, candidateId, detail: { seconds: Math.round(gapMs / 1000), reason } });
      return true;
    });
  }

  /** The engines a lab lives on: its machines', and the one that makes every lab's networks (even before it has machines). */
  private enginesOf(l: LiveLab): string[] {
    const { providers } = this.deps;
    return [l.lab?.host ?? providers.networksOn, ...(l.lab?.topology?.machines ?? []).map((m) => providers.engineOf(l.lab?.host, m.provider))];
  }

  /** Candidates of exams under way whose lab is live, being built, being graded, or failed. */
  private liveLabs(): LiveLab[] {
    const { exams, labStore } = this.deps;
    return exams.exams({ statuses: ['preparing', 'running', 'ending'] }).flatMap((exam) =>
      exams
        .candidates(exam.id)
        .filter((c) => ['provisioning', 'ready', 'active', 'ending', 'failed'].includes(c.phase))
        .map((c) => ({ examId: exam.id, candidateId: c.id, phase: c.phase, lab: labStore.labOf(c) ?? undefined })),
    );
  }
}
