import type { CheckKind } from './check-kind.js';
import { commandKind } from './kinds/command.js';
import { fileKind } from './kinds/file.js';
import { serviceKind } from './kinds/service.js';
import { portKind } from './kinds/port.js';
import { packageKind } from './kinds/package.js';
import { userKind } from './kinds/user.js';
import { groupKind } from './kinds/group.js';
import { processKind } from './kinds/process.js';
import { httpKind } from './kinds/http.js';
import { dnsKind } from './kinds/dns.js';
import { reachableKind } from './kinds/reachable.js';
import { mountKind } from './kinds/mount.js';
import { sysctlKind } from './kinds/sysctl.js';
import { accessKind } from './kinds/access.js';

export type { CheckKind, CheckCommon, Assertion, Evaluation, Observation, ProbeContext, ProbeFacts, ProbePlan, ProbeRecord, ProbeVerb, ScriptOutput } from './check-kind.js';
export { ProbeError, PROBE_VERBS } from './check-kind.js';

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
  accessKind,
];

const byName = new Map(CHECK_KINDS.map((k) => [k.kind, k]));

export function checkKind(name: string): CheckKind {
  const kind = byName.get(name);
  if (!kind) throw new Error(`unknown check kind "${name}"; known: ${[...byName.keys()].join(', ')}`);
  return kind;
}
