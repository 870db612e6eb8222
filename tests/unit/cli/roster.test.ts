import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import { main } from '../../../src/cli/main.js';

/** `examlab roster check`: what an operator runs on their centre's export before the exam. */
describe('examlab roster check', () => {
  const dir = mkdtempSync(join(tmpdir(), 'examlab-roster-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    let stdout = '';
    let stderr = '';
    const out = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((stdout += String(chunk)), true));
    const err = jest.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((stderr += String(chunk)), true));
    try {
      return { code: await main(['node', 'examlab', ...args]), stdout, stderr };
    } finally {
      out.mockRestore();
      err.mockRestore();
    }
  }

  test('a clean Windows-1252 export: the candidates and where each field came from; exit 0', async () => {
    const file = join(dir, 'inscrits.csv');
    writeFileSync(file, Buffer.from("Identifiant;Nom;Pr\xe9nom;Courriel;Groupe\r\nc001;N\x92Diaye;Zo\xe9;zoe@example.org;A\r\nc002;d'Artagnan;\xc9lo\xefse;;B\r\n", 'latin1'));
    const { code, stdout } = await run('roster', 'check', file);
    expect(code).toBe(0);
    expect(stdout).toContain('CSV, Windows-1252, separator ";"; header on line 1');
    expect(stdout).toContain('columns: id ← "Identifiant", lastName ← "Nom", firstName ← "Prénom", email ← "Courriel"');
    expect(stdout).toContain('not used: "Groupe"');
    expect(stdout).toMatch(/^ {2}c001 +Zoé N’Diaye +zoe@example\.org$/m);
    expect(stdout).toMatch(/^ {2}c002 +Éloïse d'Artagnan$/m);
    expect(stdout).toContain('2 candidate(s) read, 0 row(s) left out');
  });

  test('rows left out are listed with their line and reason; exit 1; --json for scripts', async () => {
    const file = join(dir, 'doublons.csv');
    writeFileSync(file, 'id,name\nalice,Alice\nALICE,Alice bis\n');
    const { code, stdout } = await run('roster', 'check', file);
    expect(code).toBe(1);
    expect(stdout).toContain('doublons.csv:3: duplicate identifier "ALICE", already on line 2; row left out');
    const json = await run('roster', 'check', file, '--json');
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ candidates: [{ id: 'alice', name: 'Alice' }], imported: 1, rejected: [{ where: 'doublons.csv:3' }] });
  });

  test('a file that is no roster: the reason on stderr; exit 1', async () => {
    const file = join(dir, 'vieux.xls');
    writeFileSync(file, Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]));
    const { code, stderr } = await run('roster', 'check', file);
    expect(code).toBe(1);
    expect(stderr).toContain('vieux.xls: an Excel 97-2003 workbook (.xls) cannot be read');
    expect(stderr).toContain('save it as "Classeur Excel (.xlsx)" or as CSV');
  });
});
