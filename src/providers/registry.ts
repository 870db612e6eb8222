import { EnvironmentError, InputError } from '../util/errors.js';
import type { NetworkProvider, Provider, ProviderName } from './types.js';

type Factory = () => Promise<Provider>;

/**
 * The providers this process may use, filled at the composition root (no
 * import side effects). A provider is created on first use, so a Docker-only
 * lab never needs libvirtd. One of them also makes every lab's networks.
 */
export class ProviderRegistry {
  private readonly factories = new Map<string, Factory>();
  private readonly instances = new Map<string, Promise<Provider>>();
  private networkProvider?: string;

  register(name: ProviderName, factory: Factory, options: { networks?: boolean } = {}): this {
    this.factories.set(name, factory);
    if (options.networks) this.networkProvider = name;
    return this;
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
