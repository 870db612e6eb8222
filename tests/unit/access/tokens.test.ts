import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashStaffToken, TokenStore } from '../../../src/access/index.js';
import { openDatabase, type Db } from '../../../src/util/database.js';

/** Staff tokens on a real SQLite file, across a reopening (a daemon restart reads its configuration again). */
describe('staff tokens', () => {
  let dir: string;
  let db: Db;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'examlab-tokens-'));
    db = openDatabase(join(dir, 'examlab.db'));
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const CONFIG_TOKEN = 'a-token-from-daemon-yaml-0123';

  test('a token of the configuration revoked through the API stays revoked after a restart', () => {
    const first = new TokenStore(db).add('dupont', 'operator', hashStaffToken(CONFIG_TOKEN), 'config');
    new TokenStore(db).revoke(first.id);
    db.close();

    db = openDatabase(join(dir, 'examlab.db'));
    const tokens = new TokenStore(db);
    const again = tokens.add('dupont', 'operator', hashStaffToken(CONFIG_TOKEN), 'config');
    expect(again.id).toBe(first.id);
    expect(again.revokedAt).toBeDefined();
    expect(tokens.resolve(CONFIG_TOKEN)).toBeUndefined();
    expect(tokens.count('operator')).toBe(0);
  });

  test('a renamed or re-roled configuration token keeps its record; a new value is a new token', () => {
    const tokens = new TokenStore(db);
    const first = tokens.add('dupont', 'operator', hashStaffToken(CONFIG_TOKEN), 'config');
    expect(tokens.add('dupont-jury', 'jury', hashStaffToken(CONFIG_TOKEN), 'config')).toMatchObject({ id: first.id, name: 'dupont-jury', role: 'jury' });
    expect(tokens.resolve(CONFIG_TOKEN)).toMatchObject({ id: first.id, role: 'jury' });
    expect(tokens.add('dupont', 'operator', hashStaffToken(`${CONFIG_TOKEN}-new`), 'config').id).not.toBe(first.id);
  });
});
