import { EnvironmentError, InputError } from '../util/errors.js';
import type { NetworkProvider, Provider, ProviderName } from './types.js';

type Factory = () => Promise<Provider>;

/** A lab host of the daemon's configuration: a Docker engine labs are placed on, each lab wholly on one. */
export interface LabHost {
  /** The registry's key of its engine: `docker@NAME`. */
  key: string;
  name: string;
  /** Labs it may hold at once (the centre's figure); unbounded when absent. */
  capacity?: number;
  /** Its engine is this host's: VMs (libvirt, here) can join its lab networks. */
  local: boolean;
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

  /** A lab host: a Docker engine of its own, under the key `docker@NAME`. */
  registerHost(host: Omit<LabHost, 'key'>, factory: Factory): this {
    const key = `docker@${host.name}`;
    this.factories.set(key, factory);
    this.labHosts.push({ ...host, key });
    return this;
  }

  /** The lab hosts of the configuration; none on a single host. */
  hosts(): readonly LabHost[] {
    return this.labHosts;
  }

  /** The registry key of the engine that runs a lab's machines of `provider`: its host's for Docker machines, when it has one. */
  engineOf(labHost: string | undefined, provider: string): string {
    return provider === 'docker' && labHost ? labHost : provider;
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
