import type { Logger } from 'pino';
import type { AuditLog } from '../audit/index.js';
import type { Authenticator, StaffTokens } from '../access/index.js';
import type { AccessInfo, ExamReader, ExamService } from '../exams/index.js';
import type { Recordings } from '../terminal/index.js';
import type { Clock } from '../util/retry.js';
import type { Metrics } from './metrics.js';

export interface Readiness {
  ready: boolean;
  checks: Record<string, { ok: boolean; detail: string }>;
}

/** What the HTTP layer needs, passed in by the composition root: services, never stores. */
export interface ServerDeps {
  /** Exam commands (create, start, end, what the operator does to a candidate). */
  service: ExamService;
  /** Exam reads (room view, candidate detail, a candidate's own page). */
  reader: ExamReader;
  staffTokens: StaffTokens;
  /** The candidates' terminal sessions, recorded. */
  recordings: Recordings;
  audit: AuditLog;
  auth: Authenticator;
  access: AccessInfo;
  metrics: Metrics;
  clock: Clock;
  log: Logger;
  version: string;
  readiness(): Promise<Readiness>;
  /** Folders of static files served at /, in order: the pages, the bundled scripts. */
  publicDirs?: string[];
}
