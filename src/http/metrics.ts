import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ExamMetrics } from '../exams/index.js';
import { LAB_STATES } from '../labs/index.js';
import { CANDIDATE_PHASES } from '../exams/index.js';

export interface Metrics extends ExamMetrics {
  registry: Registry;
  httpRequest(method: string, status: number): void;
}

/** The gauges' sources, read at each scrape. */
export interface MetricSources {
  labsByState(): ReadonlyMap<string, number>;
  /** Candidates of exams not yet ended. */
  candidatesByPhase(): ReadonlyMap<string, number>;
  gatewaySessions(): number;
}

/** Prometheus metrics of this daemon, in their own registry (several daemons may share a process in tests). */
export function createMetrics(sources: MetricSources): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'examlab_process_' });
  new Gauge({
    name: 'examlab_labs',
    help: 'Labs in the store, by lifecycle state',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const counts = sources.labsByState();
      for (const state of LAB_STATES) this.set({ state }, counts.get(state) ?? 0);
    },
  });
  new Gauge({
    name: 'examlab_candidates',
    help: 'Candidates of exams not yet ended, by phase',
    labelNames: ['phase'],
    registers: [registry],
    collect() {
      const counts = sources.candidatesByPhase();
      for (const phase of CANDIDATE_PHASES) this.set({ phase }, counts.get(phase) ?? 0);
    },
  });
  new Gauge({
    name: 'examlab_gateway_sessions',
    help: 'Candidate SSH connections open through the gateway',
    registers: [registry],
    collect() {
      this.set(sources.gatewaySessions());
    },
  });
  const provisioning = new Histogram({
    name: 'examlab_lab_provisioning_seconds',
    help: 'Time to build a lab and verify its broken state',
    buckets: [5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300],
    registers: [registry],
  });
  const grading = new Histogram({
    name: 'examlab_lab_grading_seconds',
    help: 'Time to grade a lab',
    labelNames: ['purpose'],
    buckets: [1, 2, 4, 6, 8, 10, 15, 20, 30, 60],
    registers: [registry],
  });
  const errors = new Counter({ name: 'examlab_errors_total', help: 'Errors, by kind', labelNames: ['kind'], registers: [registry] });
  const requests = new Counter({ name: 'examlab_http_requests_total', help: 'HTTP requests, by method and status', labelNames: ['method', 'status'], registers: [registry] });
  return {
    registry,
    labProvisioned: (seconds) => provisioning.observe(seconds),
    labGraded: (seconds, purpose) => grading.observe({ purpose }, seconds),
    error: (kind) => errors.inc({ kind }),
    httpRequest: (method, status) => requests.inc({ method, status: String(status) }),
  };
}
