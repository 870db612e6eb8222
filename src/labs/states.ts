import { ConflictError } from '../util/errors.js';

/**
 * A lab's lifecycle. Every transition goes through `assertTransition`, and
 * the store persists each one (with an event) before anyone is told.
 *
 *   requested → provisioning → ready → running → frozen → graded → destroyed
 *                     ↓                                       ↑
 *                   failed ────────────────────────────────────┘ (any state may be destroyed)
 */
export const LAB_STATES = ['requested', 'provisioning', 'ready', 'running', 'frozen', 'graded', 'failed', 'destroyed'] as const;
export type LabState = (typeof LAB_STATES)[number];

const TRANSITIONS: Record<LabState, readonly LabState[]> = {
  requested: ['provisioning', 'failed', 'destroyed'],
  // provisioning → provisioning: a restarted daemon redoes an interrupted provisioning.
  provisioning: ['ready', 'failed', 'provisioning', 'destroyed'],
  ready: ['running', 'frozen', 'provisioning', 'destroyed'],
  running: ['frozen', 'provisioning', 'destroyed'],
  frozen: ['graded', 'running', 'destroyed'],
  graded: ['running', 'frozen', 'destroyed'],
  failed: ['provisioning', 'destroyed'],
  destroyed: [],
};

export function canTransition(from: LabState, to: LabState): boolean {
  return TRANSITIONS[from].includes(to);
}

export function assertTransition(labId: string, from: LabState, to: LabState): void {
  if (!canTransition(from, to)) {
    throw new ConflictError(`lab ${labId} is ${from}; it cannot become ${to} (allowed: ${TRANSITIONS[from].join(', ') || 'none'})`);
  }
}

/** States in which a lab's machines exist and can be graded. */
export const GRADABLE_STATES: readonly LabState[] = ['ready', 'running', 'frozen', 'graded'];
