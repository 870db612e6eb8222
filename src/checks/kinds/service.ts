import { z } from 'zod';
import { pattern } from '../fields.js';
import { defineKind, ProbeError, type Assertion } from '../check-kind.js';
import { assertFlag, parsePlain, requireFragment } from '../assertions.js';
import { shq } from '../../util/shell.js';

/** Unit file states for which `systemctl is-enabled` would say the unit starts at boot. */
const ENABLED_STATES = new Set(['enabled', 'enabled-runtime', 'alias', 'generated']);

/**
 * Asks systemd itself (PID 1, over its private D-Bus socket) through the
 * grader's static probe: a `systemctl` replaced by the candidate is never run.
 */
export const serviceKind = defineKind(
  'service',
  {
    name: pattern(/^[A-Za-z0-9@_.:\\-]+$/, 'not a valid unit name').describe('Unit name; ".service" is implied'),
    active: z.boolean().optional().describe('Running (ActiveState=active)'),
    enabled: z.boolean().optional().describe('Started at boot'),
  },
  {
    plan(check) {
      return { machine: check.machine, fragment: `exec $P unit ${shq(check.name)}` };
    },
    evaluate(check, facts) {
      const out = requireFragment(facts.fragment);
      const f = parsePlain(out.stdout);
      if (out.exitCode !== 0 || !f.has('ActiveState')) {
        throw new ProbeError(`cannot read the state of ${check.name} from systemd: ${f.get('error') ?? (out.stderr.trim() || `probe exited ${out.exitCode}`)}`);
      }
      const load = f.get('LoadState') ?? '';
      const activeState = f.get('ActiveState') ?? '';
      const fileState = f.get('UnitFileState') ?? '';
      const evidence = `${f.get('unit')}: LoadState=${load} ActiveState=${activeState} SubState=${f.get('SubState')} UnitFileState=${fileState || '(none)'}`;
      const wantActive = check.active ?? (check.enabled === undefined ? true : undefined);
      const assertions: Assertion[] = [];
      // A unit that does not exist is neither running nor enabled: that only fails a check that wants it to be.
      if (load === 'not-found' && (wantActive === true || check.enabled === true)) {
        assertions.push({ name: 'exists', pass: false, expected: `unit ${f.get('unit')} exists`, actual: 'no such unit', gate: true });
        return { assertions, evidence };
      }
      if (wantActive !== undefined) assertions.push(assertFlag('active', wantActive, activeState === 'active', activeState));
      if (check.enabled !== undefined) assertions.push(assertFlag('enabled', check.enabled, ENABLED_STATES.has(fileState), fileState || 'no unit file'));
      return { assertions, evidence };
    },
  },
);
