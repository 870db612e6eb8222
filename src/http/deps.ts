import type { Logger } from 'pino';
import type { AuditLog } from '../audit/index.js';
import type { Authenticator } from '../access/index.js';
import type { TokenStore } from '../access/index.js';
import type { ExamService } from '../exams/index.js';
import type { AccessInfo } from '../exams/index.js';
import type { LabService } from '../labs/index.js';
import type { ExamStore } from '../exams/index.js';
import type { LabStore } from '../labs/index.js';
import type { Clock } from '../util/retry.js';
import type { Metrics } from './metrics.js';

export interface Readiness {
  ready: boolean;
  checks: Record<string, { ok: boolean; detail: string }>;
}

/** What the HTTP layer needs, passed in by the daemon's composition. */
export interface ServerDeps {
  service: ExamService;
  exams: ExamStore;
  labStore: LabStore;
  labs: LabService;
  audit: AuditLog;
  tokens: TokenStore;
  auth: Authenticator;
  access: AccessInfo;
  metrics: Metrics;
  clock: Clock;
  log: Logger;
  version: string;
  readiness(): Promise<Readiness>;
  /** Folder of static pages served at /. */
  publicDir?: string;
}
