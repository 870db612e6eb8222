import { InputError } from '../util/errors.js';
import type { Provider, ProviderName } from './types.js';

type Factory = () => Promise<Provider>;

/**
 * The providers this process may use, filled at the composition root (no
 * import side effects). A provider is created on first use, so a Docker-only
 * lab never needs libvirtd.
 */
export class ProviderRegistry {
  private readonly factories = new Map<string, Factory>();
  private readonly instances = new Map<string, Promise<Provider>>();

  register(name: ProviderName, factory: Factory): this {
    this.factories.set(name, factory);
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

  /** The providers already started (for teardown and reconciliation). */
  async started(): Promise<Provider[]> {
    const settled = await Promise.allSettled(this.instances.values());
    return settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  }
}
