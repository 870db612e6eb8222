import type { HostCapacity, LabHost, Provider, ProviderRegistry } from '../providers/index.js';
import { Mutex } from '../util/concurrency.js';
import { EnvironmentError, errorMessage } from '../util/errors.js';
import { withTimeout } from '../util/retry.js';
import { fitLabs, type CapacityReport, type LabNeeds } from './capacity.js';
import type { LabRecord, LabStore } from './lab-store.js';

/** How long a host's engine may take to answer before a lab goes elsewhere. */
const ANSWER_MS = 5_000;
/**
 * How long a host's resources, as its engine reports them, are taken as
 * still true. Reading them costs up to a second on a busy local host (the
 * inotify count walks every process's files), and a room of labs is
 * placed one after the other; the labs placed meanwhile are counted from
 * the store.
 */
const RESOURCES_FRESH_MS = 10_000;
/** A host that did not answer is passed over this long without being asked again: each lab of a room would otherwise wait ANSWER_MS on it. */
const SILENCE_REMEMBERED_MS = 15_000;

/** What a lab asks of its host. */
export interface PlacementNeeds {
  /** What one lab of its scenario takes (the capacity model of `examlab doctor`). */
  lab: LabNeeds;
  /** Labels the host must carry (the scenario's hostLabels). */
  labels: Readonly<Record<string, string>>;
}

/** A host's answer to "can you take this lab", and how many more of its kind. */
export interface HostFit {
  host: LabHost;
  /** More labs of this kind it can take now; 0 when it cannot take one. */
  room: number;
  /** Why it cannot, or what sets its room. */
  detail: string;
}

/**
 * Chooses the lab host of each lab: one that carries the labels the
 * scenario requires, whose engines answer, that can run its machines, with
 * the most room left, its room being what its memory, disk and subnets
 * allow (the capacity model of `examlab doctor`), bounded by the centre's
 * `capacity` when set. A lab with VMs prefers a host labelled `kvm: true`
 * (TCG guests are several times slower). Labs placed at the same time are
 * placed one after the other, so that each sees the others.
 */
export class Placement {
  private readonly lock = new Mutex();
  private readonly resources = new Map<string, { at: number; value: Promise<HostCapacity> }>();
  private readonly silent = new Map<string, { at: number; why: string }>();

  constructor(
    private readonly providers: ProviderRegistry,
    private readonly store: LabStore,
  ) {}

  /** Records the lab's host and returns the lab; keeps the host it has when that one still answers. */
  place(lab: LabRecord, needs: PlacementNeeds): Promise<LabRecord> {
    return this.lock.run(async () => {
      if (lab.host && (await this.answers(lab.host)) === undefined) return lab;
      const fits = await this.fits(needs);
      const best = fits.filter((f) => f.room > 0).sort((a, b) => preference(b, needs) - preference(a, needs) || b.room - a.room)[0];
      if (!best) throw new EnvironmentError(`no lab host can take lab ${lab.id}: ${fits.map((f) => `${f.host.name}: ${f.detail}`).join('; ')}`);
      return this.store.setHost(lab.id, best.host.key);
    });
  }

  /** Each host's room for one more lab of this kind, and why. */
  async fits(needs: PlacementNeeds): Promise<HostFit[]> {
    const held = this.store.liveLabsByHost();
    return Promise.all(this.providers.hosts().map((host) => this.fit(host, needs, held.get(host.key) ?? 0)));
  }

  private async fit(host: LabHost, needs: PlacementNeeds, used: number): Promise<HostFit> {
    const refuse = (detail: string): HostFit => ({ host, room: 0, detail });
    const missing = Object.entries(needs.labels).filter(([k, v]) => host.labels[k] !== v);
    if (missing.length) return refuse(`lacks the label${missing.length > 1 ? 's' : ''} ${missing.map(([k, v]) => `${k}: ${v}`).join(', ')}`);
    if (needs.lab.vms && !host.vms) return refuse('the lab has virtual machines and this host has no libvirt');
    const silence = this.silent.get(host.key);
    if (silence && Date.now() - silence.at < SILENCE_REMEMBERED_MS) return refuse(silence.why);
    let docker: Provider;
    let capacity: HostCapacity | string;
    try {
      docker = await this.providers.get(host.key);
      capacity = await withTimeout<HostCapacity | string>(docker.ping(), ANSWER_MS, `lab host ${host.name}`);
      if (docker.capacity) capacity = await withTimeout(this.resourcesOf(host.key, docker), ANSWER_MS, `resources of lab host ${host.name}`);
      if (needs.lab.vms && host.vms) await withTimeout((await this.providers.get(host.vms)).ping(), ANSWER_MS, `libvirt of lab host ${host.name}`);
    } catch (err) {
      const why = `its engine does not answer (${errorMessage(err)})`;
      this.silent.set(host.key, { at: Date.now(), why });
      return refuse(why);
    }
    this.silent.delete(host.key);
    const configured = host.capacity === undefined ? undefined : host.capacity - used;
    const model = typeof capacity === 'string' ? undefined : fitLabs(needs.lab, capacity, used);
    if (model && !model.lines.some((l) => l.labs !== undefined)) return refuse('its engine says nothing of its resources');
    if (configured !== undefined && configured <= 0) return refuse(`full (${used} of ${host.capacity} labs)`);
    if (model && model.labs <= 0) return refuse(`full (${model.limitedBy})`);
    if (model && (configured === undefined || model.labs < configured)) return { host, room: model.labs, detail: `${model.labs} more labs (${model.limitedBy})` };
    if (configured !== undefined) return { host, room: configured, detail: `${configured} more labs (capacity ${host.capacity})` };
    return { host, room: Number.MAX_SAFE_INTEGER, detail: 'room unknown (its engine does not say)' };
  }

  /** What the host's engine reports of its resources, read again when older than RESOURCES_FRESH_MS. */
  private resourcesOf(key: string, docker: Provider): Promise<HostCapacity> {
    const known = this.resources.get(key);
    if (known && Date.now() - known.at < RESOURCES_FRESH_MS) return known.value;
    const value = (docker.capacity as () => Promise<HostCapacity>)();
    this.resources.set(key, { at: Date.now(), value });
    value.catch(() => this.resources.delete(key));
    return value;
  }

  /** Why the host's engine cannot take a lab now, or undefined when it answers. */
  private async answers(key: string): Promise<string | undefined> {
    try {
      await withTimeout((await this.providers.get(key)).ping(), ANSWER_MS, `lab host ${key}`);
      return undefined;
    } catch (err) {
      return `its engine does not answer (${errorMessage(err)})`;
    }
  }
}

/** VM labs go first to hosts whose guests run under KVM. */
function preference(fit: HostFit, needs: PlacementNeeds): number {
  return needs.lab.vms > 0 && fit.host.labels.kvm === 'true' ? 1 : 0;
}

/** The capacity of several lab hosts for one more lab of a kind: the sum of their rooms, a line per host. */
export function hostsCapacity(fits: readonly HostFit[]): CapacityReport {
  const known = (f: HostFit) => f.room !== Number.MAX_SAFE_INTEGER;
  const lines = fits.map((f) => ({ resource: f.host.name, perLab: '1 lab', available: f.detail, ...(known(f) ? { labs: f.room } : {}) }));
  const open = fits.filter((f) => f.room > 0);
  if (open.some((f) => !known(f))) return { labs: Number.MAX_SAFE_INTEGER, limitedBy: `nothing known of ${open.filter((f) => !known(f)).map((f) => f.host.name).join(', ')}`, lines, hosts: fits.length };
  const tightest = [...fits].sort((a, b) => a.room - b.room)[0];
  return { labs: open.reduce((sum, f) => sum + f.room, 0), limitedBy: tightest ? `the room of each host; the least: ${tightest.host.name}, ${tightest.detail}` : 'no lab host', lines, hosts: fits.length };
}
