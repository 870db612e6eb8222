import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkDataDisk, readDiskSpace } from '../../../src/daemon/data-disk.js';

const GIB = 2 ** 30;
const space = (freeGib: number) => async () => ({ freeBytes: freeGib * GIB, totalBytes: 100 * GIB });

describe("the data directory's disk reserve", () => {
  test('fine above twice the reserve, low under it (said before it runs out), short under the reserve', async () => {
    expect(await checkDataDisk('/data', 2 * GIB, space(10))).toEqual({ ok: true, low: false, detail: '10.0 GiB free of 100.0 GiB on /data; reserve 2.0 GiB' });
    expect(await checkDataDisk('/data', 2 * GIB, space(3))).toEqual({ ok: true, low: true, detail: '3.0 GiB free of 100.0 GiB on /data; running low (the reserve is 2.0 GiB)' });
    const short = await checkDataDisk('/data', 2 * GIB, space(1));
    expect(short).toMatchObject({ ok: false, low: true });
    expect(short.detail).toBe('1.0 GiB free of 100.0 GiB on /data; below the reserve of 2.0 GiB: free space now, or the store may stop taking writes');
  });

  test('a filesystem that cannot be read is not ready, and says why', async () => {
    const failing = await checkDataDisk('/data', 2 * GIB, async () => {
      throw new Error('EIO');
    });
    expect(failing).toEqual({ ok: false, low: true, detail: 'cannot read the free space of /data: EIO' });
  });

  test('reads the real filesystem of a folder', async () => {
    const real = await readDiskSpace(mkdtempSync(join(tmpdir(), 'examlab-disk-')));
    expect(real.totalBytes).toBeGreaterThan(0);
    expect(real.freeBytes).toBeGreaterThan(0);
    expect(real.freeBytes).toBeLessThanOrEqual(real.totalBytes);
  });
});
