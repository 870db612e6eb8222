import type { Db } from '../util/database.js';
import { now } from '../util/database.js';
import { NotFoundError } from '../util/errors.js';
import { assertTransition, type LabState } from './states.js';
import type { CheckResult } from '../grading/index.js';
import type { Score } from '../grading/index.js';
import type { LabNetwork, LabRef, MachineConsole, ProviderName } from '../providers/index.js';

/** Where each machine of a lab ended up, filled in as provisioning goes. */
export interface LabTopology {
  networks: LabNetwork[];
  machines: {
    name: string;
    provider: ProviderName;
    hostname: string;
    address: string;
    /** Address per lab network. */
    addresses: Record<string, string>;
    /** Pinned SSH host key fingerprint, learnt at first contact. */
    hostKey?: string;
    loginUser?: string;
    /** VMs: serial console, its log, guest agent. */
    console?: MachineConsole;
    /** The programs each checked service ran in the sound system (after setup, before the faults), by unit. */
    servicePrograms?: Record<string, string[]>;
  }[];
}

/** Keys and passwords of a lab. Stored in the private data directory only; never shown to candidates except their own. */
export interface LabSecrets {
  graderPrivateKey: string;
  graderPublicKey: string;
  candidatePrivateKey: string;
  candidatePublicKey: string;
  candidatePassword: string;
}

export interface LabRecord {
  id: string;
  examId?: string;
  candidateId?: string;
  scenarioId: string;
  scenarioFile: string;
  scenarioText: string;
  scenarioHash: string;
  state: LabState;
  stateDetail?: string;
  seed: string;
  variables: Record<string, string>;
  topology?: LabTopology;
  /** The lab host it lives on, wholly (the registry's key of its Docker engine); absent on a single host. */
  host?: string;
  secrets: LabSecrets;
  createdAt: string;
  updatedAt: string;
}

export type RunPurpose = 'grade' | 'baseline' | 'solution' | 'final';

export interface RunRecord {
  id: string;
  labId: string;
  purpose: RunPurpose;
  status: 'running' | 'done' | 'failed';
  startedAt: string;
  finishedAt?: string;
  score?: Score;
  error?: string;
  results: CheckResult[];
}

interface LabRow {
  id: string;
  exam_id: string | null;
  candidate_id: string | null;
  scenario_id: string;
  scenario_file: string;
  scenario_text: string;
  scenario_hash: string;
  state: LabState;
  state_detail: string | null;
  seed: string;
  variables: string;
  topology: string | null;
  host: string | null;
  secrets: string;
  created_at: string;
  updated_at: string;
}

/** Labs, their lifecycle events and their grading runs, in SQLite. */
export class LabStore {
  constructor(private readonly db: Db) {}

  create(lab: Omit<LabRecord, 'state' | 'createdAt' | 'updatedAt' | 'stateDetail' | 'topology'>): LabRecord {
    const at = now();
    this.db.transaction(() => {
      this.db
        .prepare(
          `INSERT INTO labs (id, exam_id, candidate_id, scenario_id, scenario_file, scenario_text, scenario_hash, state, seed, variables, secrets, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, 'requested', ?, ?, ?, ?, ?)`,
        )
        .run(lab.id, lab.examId ?? null, lab.candidateId ?? null, lab.scenarioId, lab.scenarioFile, lab.scenarioText, lab.scenarioHash, lab.seed, JSON.stringify(lab.variables), JSON.stringify(lab.secrets), at, at);
      this.db.prepare(`INSERT INTO lab_events (lab_id, at, from_state, to_state) VALUES (?, ?, NULL, 'requested')`).run(lab.id, at);
    })();
    return this.get(lab.id);
  }

  /** The lab a record points to (a candidate's current lab), if it is still in the store. */
  labOf(holder: { labId?: string | null }): LabRecord | undefined {
    return holder.labId ? this.find(holder.labId) : undefined;
  }

  find(id: string): LabRecord | undefined {
    const row = this.db.prepare(`SELECT * FROM labs WHERE id = ?`).get(id) as LabRow | undefined;
    return row ? toRecord(row) : undefined;
  }

  get(id: string): LabRecord {
    const lab = this.find(id);
    if (!lab) throw new NotFoundError(`no lab ${id}`);
    return lab;
  }

  /** How many labs are in each lifecycle state. */
  countByState(): Map<string, number> {
    const rows = this.db.prepare(`SELECT state, count(*) AS n FROM labs GROUP BY state`).all() as { state: string; n: number }[];
    return new Map(rows.map((r) => [r.state, r.n]));
  }

  list(filter: { examId?: string; includeDestroyed?: boolean } = {}): LabRecord[] {
    const rows = this.db
      .prepare(
        `SELECT * FROM labs WHERE (@exam IS NULL OR exam_id = @exam) AND (@all = 1 OR state != 'destroyed') ORDER BY created_at, id`,
      )
      .all({ exam: filter.examId ?? null, all: filter.includeDestroyed ? 1 : 0 }) as LabRow[];
    return rows.map(toRecord);
  }

  /** An exam's spare labs: built for no candidate yet, not destroyed. */
  spares(examId: string): LabRecord[] {
    return this.list({ examId }).filter((l) => !l.candidateId);
  }

  /** Gives a spare lab to a candidate: their id and name in its values. */
  assign(id: string, candidate: { id: string; name: string }): LabRecord {
    const lab = this.get(id);
    const variables = { ...lab.variables, 'candidate.id': candidate.id, 'candidate.name': candidate.name };
    this.db.prepare(`UPDATE labs SET candidate_id = ?, variables = ?, updated_at = ? WHERE id = ?`).run(candidate.id, JSON.stringify(variables), now(), id);
    return this.get(id);
  }

  /** Moves a lab to a new state, checked against the lifecycle, with an event; atomic. */
  transition(id: string, to: LabState, detail?: string): LabRecord {
    this.db.transaction(() => {
      const lab = this.get(id);
      assertTransition(id, lab.state, to);
      const at = now();
      this.db.prepare(`UPDATE labs SET state = ?, state_detail = ?, updated_at = ? WHERE id = ?`).run(to, detail ?? null, at, id);
      this.db.prepare(`INSERT INTO lab_events (lab_id, at, from_state, to_state, detail) VALUES (?, ?, ?, ?, ?)`).run(id, at, lab.state, to, detail ?? null);
    }).immediate();
    return this.get(id);
  }

  /** Where the lab is built: recorded before anything is made there, so a crash knows where to clean. */
  setHost(id: string, host: string): LabRecord {
    this.db.prepare(`UPDATE labs SET host = ?, updated_at = ? WHERE id = ?`).run(host, now(), id);
    return this.get(id);
  }

  /** Labs on each host that hold its resources (being built, offered, in use, kept after grading). */
  liveLabsByHost(): Map<string, number> {
    const rows = this.db.prepare(`SELECT host, count(*) AS n FROM labs WHERE host IS NOT NULL AND state IN ('provisioning', 'ready', 'running', 'frozen', 'graded') GROUP BY host`).all() as { host: string; n: number }[];
    return new Map(rows.map((r) => [r.host, r.n]));
  }

  setTopology(id: string, topology: LabTopology): void {
    this.db.prepare(`UPDATE labs SET topology = ?, updated_at = ? WHERE id = ?`).run(JSON.stringify(topology), now(), id);
  }

  events(id: string): { at: string; from?: string; to: string; detail?: string }[] {
    const rows = this.db.prepare(`SELECT at, from_state, to_state, detail FROM lab_events WHERE lab_id = ? ORDER BY id`).all(id) as {
      at: string;
      from_state: string | null;
      to_state: string;
      detail: string | null;
    }[];
    return rows.map((r) => ({ at: r.at, from: r.from_state ?? undefined, to: r.to_state, detail: r.detail ?? undefined }));
  }

  startRun(run: { id: string; labId: string; purpose: RunPurpose }): void {
    this.db.prepare(`INSERT INTO runs (id, lab_id, purpose, status, started_at) VALUES (?, ?, ?, 'running', ?)`).run(run.id, run.labId, run.purpose, now());
  }

  /** Stores a finished run and all its check results in one transaction. */
  finishRun(runId: string, results: readonly CheckResult[], score: Score): void {
    this.db.transaction(() => {
      const insert = this.db.prepare(`INSERT INTO check_results (run_id, position, check_id, status, points, max_points, result) VALUES (?, ?, ?, ?, ?, ?, ?)`);
      results.forEach((r, i) => insert.run(runId, i, r.checkId, r.status, r.points, r.maxPoints, JSON.stringify(r)));
      this.db.prepare(`UPDATE runs SET status = 'done', finished_at = ?, score = ? WHERE id = ?`).run(now(), JSON.stringify(score), runId);
    })();
  }

  failRun(runId: string, error: string): void {
    this.db.prepare(`UPDATE runs SET status = 'failed', finished_at = ?, error = ? WHERE id = ?`).run(now(), error, runId);
  }

  runs(labId: string): RunRecord[] {
    const rows = this.db.prepare(`SELECT * FROM runs WHERE lab_id = ? ORDER BY started_at, rowid`).all(labId) as {
      id: string;
      lab_id: string;
      purpose: RunPurpose;
      status: RunRecord['status'];
      started_at: string;
      finished_at: string | null;
      score: string | null;
      error: string | null;
    }[];
    return rows.map((r) => ({
      id: r.id,
      labId: r.lab_id,
      purpose: r.purpose,
      status: r.status,
      startedAt: r.started_at,
      finishedAt: r.finished_at ?? undefined,
      score: r.score ? (JSON.parse(r.score) as Score) : undefined,
      error: r.error ?? undefined,
      results: (this.db.prepare(`SELECT result FROM check_results WHERE run_id = ? ORDER BY position`).all(r.id) as { result: string }[]).map(
        (x) => JSON.parse(x.result) as CheckResult,
      ),
    }));
  }
}

function toRecord(row: LabRow): LabRecord {
  return {
    id: row.id,
    examId: row.exam_id ?? undefined,
    candidateId: row.candidate_id ?? undefined,
    scenarioId: row.scenario_id,
    scenarioFile: row.scenario_file,
    scenarioText: row.scenario_text,
    scenarioHash: row.scenario_hash,
    state: row.state,
    stateDetail: row.state_detail ?? undefined,
    seed: row.seed,
    variables: JSON.parse(row.variables) as Record<string, string>,
    topology: row.topology ? (JSON.parse(row.topology) as LabTopology) : undefined,
    host: row.host ?? undefined,
    secrets: JSON.parse(row.secrets) as LabSecrets,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** The names a provider gives the lab's objects: its id, and its exam and candidate when it has them. */
export function labRef(lab: LabRecord): LabRef {
  return { labId: lab.id, examId: lab.examId, candidateId: lab.candidateId };
}
