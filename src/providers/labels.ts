import type { LabRef } from './types.js';

/** Labels on every engine object examlab makes: how it finds and cleans up after itself. */
export const LABEL = {
  managed: 'examlab.managed',
  lab: 'examlab.lab',
  exam: 'examlab.exam',
  candidate: 'examlab.candidate',
  machine: 'examlab.machine',
  network: 'examlab.network',
} as const;

export function labLabels(lab: LabRef): Record<string, string> {
  return {
    [LABEL.managed]: 'true',
    [LABEL.lab]: lab.labId,
    ...(lab.examId ? { [LABEL.exam]: lab.examId } : {}),
    ...(lab.candidateId ? { [LABEL.candidate]: lab.candidateId } : {}),
  };
}

/** Engine object names: exl-<lab>-<machine|network>. */
export function objectName(lab: LabRef, name: string): string {
  return `exl-${lab.labId}-${name}`;
}
