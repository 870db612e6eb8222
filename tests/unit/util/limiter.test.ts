import { KeyedLock, Limiter } from '../../../src/util/limiter.js';

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

describe('concurrency helpers', () => {
  test('Limiter runs at most n tasks at once, all of them eventually, failures included', async () => {
    const limiter = new Limiter(2);
    let running = 0;
    let peak = 0;
    const results = await Promise.allSettled(
      Array.from({ length: 7 }, (_, i) =>
        limiter.run(async () => {
          running++;
          peak = Math.max(peak, running);
          await tick();
          running--;
          if (i === 3) throw new Error('boom');
          return i;
        }),
      ),
    );
    expect(peak).toBe(2);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled']);
  });

  test('KeyedLock serialises one key and lets others run alongside', async () => {
    const lock = new KeyedLock();
    const order: string[] = [];
    const task = (key: string, name: string, fail = false) =>
      lock.run(key, async () => {
        order.push(`${name}+`);
        await tick();
        order.push(`${name}-`);
        if (fail) throw new Error(name);
      });
    await Promise.allSettled([task('a', 'a1', true), task('a', 'a2'), task('b', 'b1')]);
    expect(order.indexOf('a1-')).toBeLessThan(order.indexOf('a2+'));
    expect(order.indexOf('b1+')).toBeLessThan(order.indexOf('a1-'));
  });
});
