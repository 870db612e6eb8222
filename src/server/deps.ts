import type { Logger } from 'pino';
import type { AuditLog } from '../audit/audit-log.js';
import type { Authenticator } from '../auth/authenticator.js';
import type { TokenStore } from '../auth/tokens.js';
import type { ExamService } from '../exam/exam-service.js';
import type { AccessInfo } from '../exam/views.js';
import type { LabService } from '../lab/lab-service.js';
import type { ExamStore } from '../store/exam-store.js';
import type { LabStore } from '../store/lab-store.js';
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
