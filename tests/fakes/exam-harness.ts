import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { SessionRegistry, TokenStore } from '../../src/access/index.js';
import { AuditLog, type AuditRecord } from '../../src/audit/index.js';
import { ExamReader, ExamScenarios, ExamService, ExamStore, LabPipeline, reconcile, Scheduler, type ExamMetrics, type ExamRecord, type IssuedToken, type NewExam, type PipelineSettings, type ReconcileReport } from '../../src/exams/index.js';
import type { BuiltImage, ImageService } from '../../src/images/index.js';
import { LabService, LabStore } from '../../src/labs/index.js';
import { ProviderRegistry } from '../../src/providers/index.js';
import { loadScenarioFile, parseScenario, ScenarioLibrary, type LoadedScenario } from '../../src/scenario/index.js';
import { openDatabase, type Db } from '../../src/util/database.js';
import { InputError } from '../../src/util/errors.js';
import { FakeMachineAccess } from './fake-machine-access.js';
import { FakeProvider, type EngineCall } from './fake-provider.js';
import { ManualClock } from './manual-clock.js';

/** The images the fake catalog knows; any other name is refused as the real catalog refuses it. */
export class FakeImages implements Pick<ImageService, 'ensure' | 'runsSystemd'> {
  readonly ensured: string[] = [];
  constructor(private readonly known: readonly string[] = ['base', 'vm']) {}

  async ensure(name: string): Promise<BuiltImage> {
    this.ensured.push(name);
    if (!this.known.includes(name)) throw new InputError(`unknown image "${name}"; known: ${this.known.join(', ')}`);
    return { ref: `fake/${name}`, systemd: true, capabilities: ['CHOWN'], bootable: false };
  }

  async runsSystemd(name: string): Promise<boolean> {
    return this.known.includes(name);
  }
}

/** What the pipeline reports, counted. */
export class CountingMetrics implements ExamMetrics {
  provisioned = 0;
  graded = 0;
  readonly errors: string[] = [];
  labProvisioned(): void {
    this.provisioned++;
  }
  labGraded(): void {
    this.graded++;
  }
  error(kind: string): void {
    this.errors.push(kind);
  }
}

/** What stays when the daemon process stops: the database file, the engines, the machines, the time. */
interface World {
  dir: string;
  db: Db;
  disk: FakeDisk;
  stores: { labs: LabStore; exams: ExamStore; tokens: TokenStore; audit: AuditLog };
  clock: ManualClock;
  calls: EngineCall[];
  docker: FakeProvider;
  libvirt: FakeProvider;
  access: FakeMachineAccess;
  images: FakeImages;
}

/** The free space the store sees on its filesystem: set `freeBytes` under the floor and it refuses every write, as on a full disk. */
export interface FakeDisk {
  freeBytes: number;
}

export const DEFAULT_SETTINGS: PipelineSettings = { provisionConcurrency: 4, gradingConcurrency: 4, attempts: 3, retryDelayMs: 1000 };

/**
 * The exam daemon wired as src/daemon/app.ts wires it (real stores on a
 * SQLite file in a temp folder, real LabService, LabPipeline, ExamService
 * and reconciler) with the engines, the machines and the clock faked.
 * `restart()` gives a new daemon process over the same world.
 */
export class ExamHarness {
  readonly log: Logger = pino({ level: 'silent' });
  readonly sessions = new SessionRegistry();
  readonly metrics = new CountingMetrics();
  readonly providers: ProviderRegistry;
  readonly labs: LabService;
  readonly pipeline: LabPipeline;
  readonly service: ExamService;
  readonly reader: ExamReader;

  private constructor(
    private readonly world: World,
    readonly settings: PipelineSettings,
  ) {
    const { stores, clock, docker, libvirt, access, images } = world;
    this.providers = new ProviderRegistry().register('docker', async () => docker, { networks: true }).register('libvirt', async () => libvirt);
    this.labs = new LabService({ store: stores.labs, providers: this.providers, images, machines: access, log: this.log });
    const scenarios = new ExamScenarios();
    this.pipeline = new LabPipeline({ exams: stores.exams, labStore: stores.labs, labs: this.labs, audit: stores.audit, sessions: this.sessions, metrics: this.metrics, scenarios, log: this.log, clock, settings });
    this.reader = new ExamReader({ exams: stores.exams, labStore: stores.labs, labs: this.labs, scenarios, clock });
    this.service = new ExamService({
      exams: stores.exams,
      labStore: stores.labs,
      labs: this.labs,
      audit: stores.audit,
      sessions: this.sessions,
      pipeline: this.pipeline,
      scenarios,
      clock,
      log: this.log,
      library: new ScenarioLibrary([join(world.dir, 'scenarios')]),
      uploadsDir: join(world.dir, 'uploads'),
      loadScenario: (file) => loadScenarioFile(file),
    });
  }

  static create(settings: Partial<PipelineSettings> = {}): ExamHarness {
    const dir = mkdtempSync(join(tmpdir(), 'examlab-unit-'));
    const disk: FakeDisk = { freeBytes: 100 * 2 ** 30 };
    const db = openDatabase(join(dir, 'examlab.db'), undefined, { freeSpace: () => ({ freeBytes: disk.freeBytes, totalBytes: 200 * 2 ** 30 }) });
    // A test's database need not survive a power cut: no fsync at each commit.
    db.pragma('synchronous = OFF');
    const calls: EngineCall[] = [];
    const docker = new FakeProvider('docker', calls);
    const libvirt = new FakeProvider('libvirt', calls);
    const access = new FakeMachineAccess((labId, machine) => docker.machine(labId, machine) ?? libvirt.machine(labId, machine), calls);
    const stores = { labs: new LabStore(db), exams: new ExamStore(db), tokens: new TokenStore(db), audit: new AuditLog(db) };
    return new ExamHarness({ dir, db, disk, stores, clock: new ManualClock(), calls, docker, libvirt, access, images: new FakeImages() }, { ...DEFAULT_SETTINGS, ...settings });
  }

  /** A new daemon process over the same database, engines and clock (nothing of the old one's memory). */
  restart(settings: Partial<PipelineSettings> = {}): ExamHarness {
    return new ExamHarness(this.world, { ...this.settings, ...settings });
  }

  get stores(): World['stores'] {
    return this.world.stores;
  }
  get exams(): ExamStore {
    return this.world.stores.exams;
  }
  get labStore(): LabStore {
    return this.world.stores.labs;
  }
  get clock(): ManualClock {
    return this.world.clock;
  }
  get docker(): FakeProvider {
    return this.world.docker;
  }
  get libvirt(): FakeProvider {
    return this.world.libvirt;
  }
  get access(): FakeMachineAccess {
    return this.world.access;
  }
  get images(): FakeImages {
    return this.world.images;
  }
  get db(): Db {
    return this.world.db;
  }
  /** The store's filesystem, as the store sees it. */
  get disk(): FakeDisk {
    return this.world.disk;
  }

  /** The daemon's clock (scheduler) over these parts: tick it by hand. */
  scheduler(): Scheduler {
    return new Scheduler({ service: this.service, exams: this.exams, pipeline: this.pipeline, audit: this.stores.audit, clock: this.clock, log: this.log, tickMs: 1000 });
  }
  /** Every call to the engines and machines, in order. */
  get calls(): EngineCall[] {
    return this.world.calls;
  }

  /** Calls about one lab, as `op machine` (or `op`), in order. */
  callsOf(labId: string, filter: (c: EngineCall) => boolean = () => true): string[] {
    return this.calls.filter((c) => c.labId === labId && filter(c)).map((c) => (c.machine ? `${c.op} ${c.machine}` : c.op));
  }

  /** Inline scenario YAML as a loaded scenario file (for labs made without an exam). */
  scenario(yaml: string): LoadedScenario {
    const file = join(this.world.dir, 'scenario.yaml');
    return { scenario: parseScenario(yaml, file), file, text: yaml };
  }

  /** An exam from inline scenario YAML (as an upload), created by `operator`; manual start unless told otherwise. */
  async createExam(yaml: string, candidates: readonly string[], options: Partial<Omit<NewExam, 'scenario' | 'roster'>> = {}): Promise<{ exam: ExamRecord; tokens: IssuedToken[] }> {
    return this.service.create(
      {
        scenario: { yaml },
        roster: candidates.map((id) => ({ id, name: `Candidate ${id}` })),
        start: { policy: 'manual' },
        autoFreeze: true,
        keepLabs: true,
        mode: 'exam',
        ...options,
      },
      'operator',
    );
  }

  /** An exam started and every lab prepared. */
  async runningExam(yaml: string, candidates: readonly string[], options: Partial<Omit<NewExam, 'scenario' | 'roster'>> = {}): Promise<{ exam: ExamRecord; tokens: IssuedToken[] }> {
    const created = await this.createExam(yaml, candidates, options);
    this.service.start(created.exam.id, 'operator');
    await this.settle();
    return created;
  }

  /** The reconciler as the daemon runs it at start. */
  reconcile(heartbeatGraceMs = 60_000): Promise<ReconcileReport> {
    return reconcile({
      exams: this.exams,
      labStore: this.labStore,
      labs: this.labs,
      audit: this.stores.audit,
      pipeline: this.pipeline,
      providers: this.providers,
      clock: this.clock,
      log: this.log,
      heartbeatGraceMs,
    });
  }

  /**
   * Waits until the background work (preparations, completions) is done.
   * The fakes never wait on real time or I/O, so each turn of the event
   * loop runs every step that is ready.
   */
  async settle(): Promise<void> {
    for (let turn = 0; turn < 50; turn++) {
      await new Promise((resolve) => setImmediate(resolve));
      if (this.pipeline.busy === 0) return;
    }
    throw new Error(`the pipeline is still busy (${this.pipeline.busy} task(s))`);
  }

  /** Lets the background work run until `condition` holds (work stuck on a hung call never settles). */
  async until(condition: () => boolean): Promise<void> {
    for (let turn = 0; turn < 50; turn++) {
      if (condition()) return;
      await new Promise((resolve) => setImmediate(resolve));
    }
    throw new Error('the condition never held');
  }

  /** The audit actions about an exam (or all), in order. */
  actions(filter: { examId?: string; candidateId?: string } = {}): string[] {
    return this.audit(filter).map((r) => r.action);
  }

  audit(filter: { examId?: string; candidateId?: string } = {}): AuditRecord[] {
    return this.stores.audit.list(filter);
  }

  close(): void {
    this.world.db.close();
    rmSync(this.world.dir, { recursive: true, force: true });
  }
}
