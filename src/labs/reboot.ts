import { withMachineSession, type MachineSession } from '../remote/index.js';
import type { SshTarget } from '../remote/index.js';
import { retryUntil } from '../util/retry.js';

const BOOT_ID = 'cat /proc/sys/kernel/random/boot_id';

async function bootId(session: MachineSession): Promise<string> {
  return (await session.exec(BOOT_ID, { timeoutMs: 10_000 })).stdout.trim();
}

/**
 * Restarts a machine (a `reboot` step) and waits until it has booted again,
 * whatever it boots into: a normal system (running, degraded) or, when its
 * disk is broken on purpose, emergency mode (maintenance), which is reached
 * through the guest agent. "Again" is a new kernel boot id; "booted" is
 * systemd no longer starting. Returns systemd's state.
 */
export async function rebootMachine(target: SshTarget, timeoutMs: number): Promise<string> {
  const before = await withMachineSession(target, 15_000, async (session) => {
    const id = await bootId(session);
    // --no-block: the reboot is queued and the command returns before the connection drops.
    await session.exec('systemctl reboot --no-block', { timeoutMs: 10_000 }).catch(() => undefined);
    return id;
  });
  const after = await retryUntil(
    () =>
      withMachineSession(target, 5_000, async (session) => {
        const result = await session.exec(`${BOOT_ID}; systemctl is-system-running --wait`, { timeoutMs: Math.min(timeoutMs, 120_000) });
        const [id = '', state = ''] = result.stdout.trim().split('\n');
        return { id, state };
      }),
    (r) => r.id !== before && r.state !== '',
    { what: `machine ${target.host} to boot again after a reboot`, timeoutMs, intervalMs: 1000 },
  );
  return after.state;
}
