import { ProviderRegistry } from '../../../src/providers/registry.js';
import { freeSubnet, hostAddress } from '../../../src/providers/addressing.js';
import type { Provider } from '../../../src/providers/types.js';

const fakeProvider = { name: 'docker' } as unknown as Provider;

describe('provider registry', () => {
  test('an unknown provider lists the known ones', () => {
    const registry = new ProviderRegistry().register('docker', async () => fakeProvider);
    expect(() => registry.get('vmware')).toThrow('unknown provider "vmware"; known: docker');
  });

  test('providers start on first use, once; a failed start is retried', async () => {
    let starts = 0;
    const registry = new ProviderRegistry().register('docker', async () => {
      starts++;
      if (starts === 1) throw new Error('engine down');
      return fakeProvider;
    });
    await expect(registry.get('docker')).rejects.toThrow('engine down');
    expect(await registry.get('docker')).toBe(fakeProvider);
    expect(await registry.get('docker')).toBe(fakeProvider);
    expect(starts).toBe(2);
  });
});

describe('lab subnets', () => {
  test('the first /24 of the pool that overlaps nothing in use', () => {
    expect(freeSubnet('10.231.0.0/16', [])).toBe('10.231.0.0/24');
    expect(freeSubnet('10.231.0.0/16', ['10.231.0.0/24', '172.17.0.0/16', '10.231.1.0/24'])).toBe('10.231.2.0/24');
    expect(freeSubnet('10.231.0.0/16', ['10.0.0.0/8'])).toBeUndefined();
    expect(freeSubnet('10.231.0.0/23', ['10.231.0.0/24', '10.231.1.0/24'])).toBeUndefined();
  });

  test('host addresses', () => {
    expect(hostAddress('10.231.4.0/24', 20)).toBe('10.231.4.20');
  });
});
