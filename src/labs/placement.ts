import type { LabHost, ProviderRegistry } from '../providers/index.js';
import { Mutex } from '../util/concurrency.js';
import { EnvironmentError, errorMessage } from '../util/errors.js';
import { withTimeout } from '../util/retry.js';
import type { LabRecord, LabStore } from './lab-store.js';

/** How long a host's engine may take to answer before a lab goes elsewhere. */
const PING_MS = 5_000;

/** What a lab asks of its host. */
export interface PlacementNeeds {
  /** It has VMs: they join the lab's bridges, so its engine must be this host's (where libvirt runs). */
  local: boolean;
}

/**
 * Chooses the lab host of each lab: one whose engine answers, that can run
 * its machines, with the most room left (its capacity minus the labs
 * it holds). Labs placed at the same time are placed one after the other,
 * so that each sees the others.
 */
export class Placement {
  private readonly lock = new Mutex();

  constructor(
    private readonly providers: ProviderRegistry,
    private readonly store: LabStore,
  ) {}

  /** Records the lab's host and returns the lab; keeps the host it has when that one still answers. */
  place(lab: LabRecord, needs: PlacementNeeds): Promise<LabRecord> {
    return this.lock.run(async () => {
      const hosts = this.providers.hosts();
      if (lab.host && (await this.answers(lab.host)) === undefined) return lab;
      const held = this.store.liveLabsByHost();
      const refused: string[] = [];
      let best: { host: LabHost; room: number } | undefined;
      for (const host of hosts) {
        const why = unfit(host, needs) ?? (await this.answers(host.key));
        const used = held.get(host.key) ?? 0;
        const room = host.capacity === undefined ? Number.MAX_SAFE_INTEGER - used : host.capacity - used;
        if (why) refused.push(`${host.name}: ${why}`);
        else if (room <= 0) refused.push(`${host.name}: full (${used} of ${host.capacity} labs)`);
        else if (!best || room > best.room) best = { host, room };
      }
      if (!best) throw new EnvironmentError(`no lab host can take lab ${lab.id}: ${refused.join('; ')}`);
      return this.store.setHost(lab.id, best.host.key);
    });
  }

  /** Why the host's engine cannot take a lab now, or undefined when it answers. */
  private async answers(key: string): Promise<string | undefined> {
    try {
      await withTimeout((await this.providers.get(key)).ping(), PING_MS, `lab host ${key}`);
      return undefined;
    } catch (err) {
      return `its engine does not answer (${errorMessage(err)})`;
    }
  }
}

function unfit(host: LabHost, needs: PlacementNeeds): string | undefined {
  return needs.local && !host.local ? 'the lab has virtual machines, which run beside this host\'s engine only' : undefined;
}
