import type { CheckKind } from './types.js';
import { commandKind } from './command.js';
import { fileKind } from './file.js';
import { serviceKind } from './service.js';
import { portKind } from './port.js';
import { packageKind } from './package.js';
import { userKind } from './user.js';
import { groupKind } from './group.js';
import { processKind } from './process.js';
import { httpKind } from './http.js';
import { dnsKind } from './dns.js';
import { reachableKind } from './reachable.js';
import { mountKind } from './mount.js';
import { sysctlKind } from './sysctl.js';

export type { CheckKind, CheckCommon, Assertion, Evaluation, FragmentOutput, ProbeContext, ProbeFacts, ProbePlan } from './types.js';
export { ProbeError } from './types.js';

/** Every check kind, by name. The scenario schema is built from this list. */
export const CHECK_KINDS: readonly CheckKind[] = [
  commandKind,
  fileKind,
  serviceKind,
  portKind,
  packageKind,
  userKind,
  groupKind,
  processKind,
  httpKind,
  dnsKind,
  reachableKind,
  mountKind,
  sysctlKind,
];

const byName = new Map(CHECK_KINDS.map((k) => [k.kind, k]));

export function checkKind(name: string): CheckKind {
  const kind = byName.get(name);
  if (!kind) throw new Error(`unknown check kind "${name}"; known: ${[...byName.keys()].join(', ')}`);
  return kind;
}
