import { createHash } from 'node:crypto';
import type { Scenario } from './schema.js';

/** Which option each pool of a lab drew: pool id → option id. */
export type FaultDraw = Record<string, string>;

/** Where a lab keeps its draw: among its variables, so a reset or a regrade finds the same faults. */
const DRAW_PREFIX = 'draw.';

/** How a draw is made: from a lab's own seed, or by seat in an exam so that neighbours differ. */
export type DrawBasis = { seed: string } | { exam: string; seat: number };

type Pools = Scenario['faultPools'];

/**
 * One option per pool. In an exam, the option is the seat's position
 * shifted by an offset drawn from the exam's id: neighbours (consecutive
 * seats) always face different options and each option goes to as many
 * candidates as the others, give or take one. Outside an exam, the lab's
 * seed picks.
 */
export function drawFaults(pools: Pools, basis: DrawBasis): FaultDraw {
  const draw: FaultDraw = {};
  for (const pool of pools) {
    const n = pool.options.length;
    const index = 'seed' in basis ? hash(`${basis.seed}/pool/${pool.id}`) % n : (basis.seat + (hash(`${basis.exam}/pool/${pool.id}`) % n)) % n;
    draw[pool.id] = (pool.options[index] as Pools[number]['options'][number]).id;
  }
  return draw;
}

/**
 * The fewest draws that together use every option of every pool: draw k
 * takes option k of each pool (its last option once it has no k-th).
 * What `scenario test` proves, one lab per draw.
 */
export function everyOption(pools: Pools): FaultDraw[] {
  const rounds = Math.max(1, ...pools.map((p) => p.options.length));
  return Array.from({ length: rounds }, (_, k) =>
    Object.fromEntries(pools.map((p) => [p.id, (p.options[Math.min(k, p.options.length - 1)] as Pools[number]['options'][number]).id])),
  );
}

/** The draw as lab variables (`draw.<pool>`). */
export function drawVariables(draw: FaultDraw): Record<string, string> {
  return Object.fromEntries(Object.entries(draw).map(([pool, option]) => [`${DRAW_PREFIX}${pool}`, option]));
}

/** The draw a lab's variables hold. */
export function drawOf(variables: Readonly<Record<string, string>>): FaultDraw {
  return Object.fromEntries(Object.entries(variables).filter(([k]) => k.startsWith(DRAW_PREFIX)).map(([k, v]) => [k.slice(DRAW_PREFIX.length), v]));
}

/**
 * The scenario as one lab meets it: each pool's drawn option adds its
 * steps after the fixed faults, and its own repair before the common
 * solution. Pools are gone from the result. A pool without a draw (or a
 * draw naming an option the scenario no longer has) is an error: a lab
 * never silently gets other faults than the ones it recorded.
 */
export function applyDraw(scenario: Scenario, draw: FaultDraw): Scenario {
  if (!scenario.faultPools.length) return scenario;
  const chosen = scenario.faultPools.map((pool) => {
    const option = pool.options.find((o) => o.id === draw[pool.id]);
    if (!option) throw new Error(`fault pool "${pool.id}": the lab's draw "${draw[pool.id] ?? '(none)'}" is not one of its options (${pool.options.map((o) => o.id).join(', ')})`);
    return option;
  });
  return {
    ...scenario,
    faults: [...scenario.faults, ...chosen.flatMap((o) => o.steps)],
    solution: [...chosen.flatMap((o) => o.solution), ...scenario.solution],
    faultPools: [],
  };
}

function hash(text: string): number {
  return createHash('sha256').update(text).digest().readUInt32BE(0);
}
