import { EnvironmentError, InputError } from '../util/errors.js';
import type { NetworkProvider, Provider, ProviderName } from './types.js';

type Factory = () => Promise<Provider>;

/** A lab host of the daemon's configuration: a Docker engine labs are placed on, each lab wholly on one, and the libvirt beside it. */
export interface LabHost {
  /** The registry's key of its Docker engine, `docker@NAME`: the key of the host itself (labs record it). */
  key: string;
  name: string;
  /** Labs it may hold at once (the centre's figure); otherwise what its resources allow. */
  capacity?: number;
  /** Its Docker engine is this host's. */
  local: boolean;
  /** The registry's key of the libvirt whose VMs join its lab networks (`libvirt@NAME`, or `libvirt` for this host's); none: no VMs there. */
  vms?: string;
  /** The centre's labels (`kvm: "true"`). */
  labels: Readonly<Record<string, string>>;
}

/**
 * The providers this process may use, filled at the composition root (no
 * import side effects). A provider is created on first use, so a Docker-only
 * lab never needs libvirtd. One of them also makes every lab's networks.
 */
export class ProviderRegistry {
  private readonly factories = new Map<string, Factory>();
  private readonly instances = new Map<string, Promise<Provider>>();
  private networkProvider?: string;
  private readonly labHosts: LabHost[] = [];

  register(name: ProviderName, factory: Factory, options: { networks?: boolean } = {}): this {
    this.factories.set(name, factory);
    if (options.networks) this.networkProvider = name;
    return this;
  }

  /**
   * A lab host: a Docker engine of its own, under the key `docker@NAME`,
   * and its VMs: a libvirt of its own (`libvirt@NAME`), this host's
   * (`'local'`: the `libvirt` provider), or none.
   */
  registerHost(host: Omit<LabHost, 'key' | 'vms'>, docker: Factory, vms?: Factory | 'local'): this {
    const key = `docker@${host.name}`;
    this.factories.set(key, docker);
    let vmsKey: string | undefined;
    if (vms === 'local') vmsKey = 'libvirt';
    else if (vms) {
      vmsKey = `libvirt@${host.name}`;
      this.factories.set(vmsKey, vms);
    }
    this.labHosts.push({ ...host, key, ...(vmsKey ? { vms: vmsKey } : {}) });
    return this;
  }

  /** The lab hosts of the configuration; none on a single host. */
  hosts(): readonly LabHost[] {
    return this.labHosts;
  }

  /** The registry key of the engine that runs a lab's machines of `provider`: its host's, when it has one. */
  engineOf(labHost: string | undefined, provider: string): string {
    if (!labHost) return provider;
    if (provider === 'docker') return labHost;
    return this.labHosts.find((h) => h.key === labHost)?.vms ?? provider;
  }

  /** The lab host an engine belongs to (its Docker engine, or a libvirt of its own); undefined for the shared engines. */
  hostOfEngine(key: string): LabHost | undefined {
    return this.labHosts.find((h) => h.key === key || (h.vms === key && key !== 'libvirt'));
  }

  /** The provider that makes a lab's networks: its host's engine, else the default one. */
  async networksOf(labHost: string | undefined): Promise<NetworkProvider> {
    const provider = await this.get(labHost ?? this.networksOn);
    if (!isNetworkProvider(provider)) throw new EnvironmentError(`provider ${provider.name} cannot make networks`);
    return provider;
  }

  names(): string[] {
    return [...this.factories.keys()];
  }

  get(name: string): Promise<Provider> {
    const factory = this.factories.get(name);
    if (!factory) throw new InputError(`unknown provider "${name}"; known: ${this.names().join(', ') || '(none)'}`);
    let instance = this.instances.get(name);
    if (!instance) {
      instance = factory();
      // A failed start (engine down) is not cached: the next call tries again.
      instance.catch(() => this.instances.delete(name));
      this.instances.set(name, instance);
    }
    return instance;
  }

  /** The name of the provider that makes lab networks: every lab needs its engine. */
  get networksOn(): string {
    if (!this.networkProvider) throw new EnvironmentError(`no provider makes lab networks; registered: ${this.names().join(', ') || '(none)'}`);
    return this.networkProvider;
  }

  /** The provider that makes lab networks. */
  async networks(): Promise<NetworkProvider> {
    const provider = await this.get(this.networksOn);
    if (!isNetworkProvider(provider)) throw new EnvironmentError(`provider ${provider.name} cannot make networks`);
    return provider;
  }
}

function isNetworkProvider(provider: Provider): provider is Provider & NetworkProvider {
  return 'createNetwork' in provider && 'destroyNetworks' in provider;
}
