/** What the exam machinery reports for monitoring; the HTTP layer exposes it (Prometheus). */
export interface ExamMetrics {
  labProvisioned(seconds: number): void;
  labGraded(seconds: number, purpose: string): void;
  error(kind: 'provisioning' | 'grading' | 'access' | 'reconcile' | 'http' | 'gateway'): void;
}
