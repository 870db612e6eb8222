import ExcelJS from 'exceljs';
import { InputError } from '../../../src/util/errors.js';
import { checkRosterJson } from '../../../src/exams/roster.js';
import { parseRosterText, readRosterFile } from '../../../src/exams/roster-file.js';

/** The details of the InputError a call throws, as "where: message". */
const problems = async (fn: () => unknown): Promise<string[]> => {
  try {
    await fn();
  } catch (err) {
    if (!(err instanceof InputError)) throw err;
    return err.details.map((d) => `${d.where}: ${d.message}`);
  }
  throw new Error('expected an InputError');
};

/**
 * Text as Excel on French Windows saves "CSV (séparateur : point-virgule)":
 * Windows-1252 bytes, CRLF line ends. Only characters of that code page.
 */
const windows1252 = (text: string): Buffer => {
  const bytes: number[] = [];
  const extra: Record<string, number> = { '€': 0x80, '’': 0x92, 'œ': 0x9c, 'Œ': 0x8c };
  for (const ch of text.replace(/\n/g, '\r\n')) {
    const code = ch.codePointAt(0) as number;
    const byte = code < 0x100 ? code : extra[ch];
    if (byte === undefined) throw new Error(`${ch} is not in Windows-1252`);
    bytes.push(byte);
  }
  return Buffer.from(bytes);
};

const utf8Bom = (text: string) => Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text, 'utf8')]);

/** A workbook as a centre keeps it: a title above the header, a blank row, typed cells. */
async function centreWorkbook(): Promise<Buffer> {
  const workbook = new ExcelJS.Workbook();
  const notes = workbook.addWorksheet('Consignes');
  notes.addRow(['Ne pas modifier les colonnes']);
  const sheet = workbook.addWorksheet('Inscrits');
  sheet.addRow(['Session RNCP37681 – Technicien supérieur systèmes et réseaux – juin']);
  sheet.mergeCells('A1:F1');
  sheet.addRow([]);
  sheet.addRow(['N° de candidat', 'Nom de famille', 'Prénom(s)', 'Adresse e-mail', 'Groupe', 'Né(e) le']);
  sheet.addRow([20250001, "N'Diaye", 'Zoé', { text: 'zoe.ndiaye@example.fr', hyperlink: 'mailto:zoe.ndiaye@example.fr' }, 'G1', new Date(Date.UTC(2001, 3, 3))]);
  sheet.addRow([20250002, { richText: [{ text: "d'Ar" }, { text: 'tagnan', font: { bold: true } }] }, 'Éloïse', '', 'G1', new Date(Date.UTC(1999, 11, 12))]);
  sheet.addRow(['', 'Sans', 'Numéro', 'x@example.fr', 'G2']);
  sheet.addRow([20250001, 'Doublon', 'Zoé', '', 'G2']);
  sheet.addRow([{ formula: 'A4+3', result: 20250004 }, 'Lefèvre', 'Noël', 'noel@example.fr', 'G2']);
  return Buffer.from(await workbook.xlsx.writeBuffer());
}

describe('roster files as centres export them', () => {
  test('Excel on French Windows: Windows-1252, ";", last and first names apart, an extra column kept out of the way', async () => {
    const file = windows1252(
      'Identifiant;Nom;Prénom;Courriel;Date de naissance\n' +
        "c001;N'Diaye;Zoé;zoe.ndiaye@example.fr;03/04/2001\n" +
        "c002;d'Artagnan;Éloïse;;12/12/1999\n" +
        'c003;Lœuillet;François;francois@example.fr;01/01/2000\n' +
        'c004;N’Guessan;Aïcha;;21/06/2002\n',
    );
    const roster = await readRosterFile(file, 'export.csv');
    expect(roster.entries).toEqual([
      { id: 'c001', name: "Zoé N'Diaye", email: 'zoe.ndiaye@example.fr' },
      { id: 'c002', name: "Éloïse d'Artagnan" },
      { id: 'c003', name: 'François Lœuillet', email: 'francois@example.fr' },
      { id: 'c004', name: 'Aïcha N’Guessan' },
    ]);
    expect(roster.read).toEqual({
      format: 'CSV, Windows-1252, separator ";"',
      headerLine: 1,
      columns: { id: 'Identifiant', lastName: 'Nom', firstName: 'Prénom', email: 'Courriel' },
      ignoredColumns: ['Date de naissance'],
    });
    expect(roster.rejected).toEqual([]);
  });

  test('UTF-8 with a BOM, commas, English headers; UTF-8 without BOM and tabs; UTF-16 as Excel saves "Unicode text"', async () => {
    const english = await readRosterFile(utf8Bom('Candidate number,Last name,First name,Email\r\nA-17,"Martin, Jr",Zoé,zoe@example.org\r\n'), 'roster');
    expect(english.entries).toEqual([{ id: 'A-17', name: 'Zoé Martin, Jr', email: 'zoe@example.org' }]);
    expect(english.read.format).toBe('CSV, UTF-8 with BOM, separator ","');

    const tabs = await readRosterFile(Buffer.from('Nom complet\tLogin\nÉloïse d’Artagnan\teloise\n', 'utf8'));
    expect(tabs.entries).toEqual([{ id: 'eloise', name: 'Éloïse d’Artagnan' }]);
    expect(tabs.read.format).toBe('CSV, UTF-8, separator tab');

    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('Identifiant\tNom\tPrénom\r\nc1\tN’Guessan\tAïcha\r\n', 'utf16le')]);
    expect((await readRosterFile(utf16)).entries).toEqual([{ id: 'c1', name: 'Aïcha N’Guessan' }]);
  });

  test('"Nom" alone is the full name; "Nom de famille", "Nom d\'usage", "N° candidat" are understood', () => {
    expect(parseRosterText('Nom;Identifiant\nAlice Martin;alice\n').entries).toEqual([{ id: 'alice', name: 'Alice Martin' }]);
    expect(parseRosterText("N° candidat;Nom d'usage;Prénom\n42;Petit;Bruno\n").entries).toEqual([{ id: '42', name: 'Bruno Petit' }]);
    // A full name beside last and first names wins; a row without it falls back to them.
    expect(parseRosterText('id;Nom complet;Nom;Prénom\na;Zoé N’Diaye-Martin;N’Diaye;Zoé\nb;;Petit;Bruno\n').entries).toEqual([
      { id: 'a', name: 'Zoé N’Diaye-Martin' },
      { id: 'b', name: 'Bruno Petit' },
    ]);
  });

  test('an XLSX with a title row above the header: the sheet with the roster, numbers, hyperlinks and rich text as Excel shows them', async () => {
    const roster = await readRosterFile(await centreWorkbook(), 'inscrits.xlsx');
    expect(roster.entries).toEqual([
      { id: '20250001', name: "Zoé N'Diaye", email: 'zoe.ndiaye@example.fr' },
      { id: '20250002', name: "Éloïse d'Artagnan" },
      { id: '20250004', name: 'Noël Lefèvre', email: 'noel@example.fr' },
    ]);
    expect(roster.read).toEqual({
      format: 'XLSX, sheet "Inscrits"',
      headerLine: 3,
      columns: { id: 'N° de candidat', lastName: 'Nom de famille', firstName: 'Prénom(s)', email: 'Adresse e-mail' },
      ignoredColumns: ['Groupe', 'Né(e) le'],
    });
    expect(roster.rejected).toEqual([
      'inscrits.xlsx (Inscrits):6: no identifier (column A "N° de candidat"); row left out',
      'inscrits.xlsx (Inscrits):7: duplicate identifier "20250001", already on line 4; row left out',
    ].map((line) => {
      const [where, message] = line.split(/: (.*)/s);
      return { where, message };
    }));
  });

  test('every unusable row is reported with its line and why; the rest is kept; duplicates are named', async () => {
    const roster = parseRosterText(
      'id;nom;prénom;email\n' +
        'alice;Martin;Alice;alice@example.org\n' +
        'bad id;Petit;Bruno;\n' +
        'carol;;;\n' +
        'ALICE;Martin;Alicia;\n' +
        'dan;Durand\u0007;Dan;\n' +
        'eve;Moreau;Ève;néant\n' +
        'fred;"Lenoir\n  Dit Le Noir";Fred;\n',
      'r.csv',
    );
    expect(roster.entries).toEqual([
      { id: 'alice', name: 'Alice Martin', email: 'alice@example.org' },
      { id: 'eve', name: 'Ève Moreau' },
      { id: 'fred', name: 'Fred Lenoir Dit Le Noir' },
    ]);
    expect(roster.rejected).toEqual([
      { where: 'r.csv:3', message: expect.stringMatching(/^the identifier "bad id" \(column A "id"\) cannot be a login: use letters.*; row left out$/) },
      { where: 'r.csv:4', message: 'no name (column B "nom", column C "prénom"); row left out' },
      { where: 'r.csv:5', message: 'duplicate identifier "ALICE", already on line 2; row left out' },
      { where: 'r.csv:6', message: 'the name (column B "nom", column C "prénom"): contains control or invisible characters; row left out' },
    ]);
    expect(roster.warnings).toEqual([{ where: 'r.csv:7', message: '"néant" (column D "email") is not an email address; candidate eve imported without one' }]);
  });

  test('a quote never closed loses only the rows it swallows, and says where; quotes inside a name are kept', () => {
    const roster = parseRosterText('id,name\nalice,Alice\nbob,"Bob\ncarol,Carol\n', 'r.csv');
    expect(roster.entries).toEqual([{ id: 'alice', name: 'Alice' }]);
    expect(roster.rejected).toEqual([{ where: 'r.csv:3', message: 'a quote opened here is never closed, so the rest of the file cannot be read; rows left out' }]);
    const misplaced = parseRosterText('id,name\nalice,"Alice" Martin\nbob,Bob\n', 'r.csv');
    expect(misplaced.entries).toEqual([
      { id: 'alice', name: '"Alice" Martin' },
      { id: 'bob', name: 'Bob' },
    ]);
    expect(misplaced.rejected).toEqual([]);
  });

  test('no usable header: says what it found and what is missing', async () => {
    expect(await problems(() => parseRosterText('Liste des inscrits\nNom;Prénom;Courriel\nMartin;Alice;a@example.org\n', 'r.csv'))).toEqual([
      'r.csv:2: this looks like the header (lastName in column A "Nom", firstName in column B "Prénom", email in column C "Courriel") but it lacks an identifier column ("Identifiant", "N° candidat", "id"...): candidate ids are their logins',
    ]);
    expect(await problems(() => parseRosterText('a;b\n1;2\n', 'r.csv'))).toEqual([expect.stringMatching(/^r\.csv:1: expected a header row naming an identifier .*; the file begins with "a \| b"$/)]);
    expect(await problems(() => parseRosterText('id;name\n', 'r.csv'))).toEqual(['r.csv:1: the header is not followed by any candidate']);
    expect(await problems(() => parseRosterText('id;name\n;Alice\n', 'r.csv'))).toEqual(['r.csv:2: no identifier (column A "id"); row left out']);
  });

  test('files that are not rosters: an old .xls, an .ods, an empty or a binary file', async () => {
    const refused = async (bytes: Buffer) => {
      try {
        await readRosterFile(bytes, 'f');
      } catch (err) {
        return err instanceof InputError ? err.message : String(err);
      }
      return 'read';
    };
    expect(await refused(Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1, 0, 0]))).toMatch(/\(\.xls\) cannot be read/);
    const ods = Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), Buffer.alloc(26), Buffer.from('mimetypeapplication/vnd.oasis.opendocument.spreadsheet')]);
    expect(await refused(ods)).toMatch(/\(\.ods\) cannot be read/);
    expect(await refused(Buffer.alloc(0))).toBe('f.csv: the file is empty');
    expect(await refused(Buffer.from([0x50, 0x4b, 0x03, 0x04, 1, 2, 3]))).toMatch(/^f\.xlsx: not a readable XLSX workbook/);
    expect(await refused(Buffer.from([0x00, 0x01, 0x02, 0x03]))).toMatch(/neither a CSV text file nor an XLSX workbook/);
  });

  test('at most 500 candidates', async () => {
    const rows = Array.from({ length: 501 }, (_, i) => `c${i};Candidat ${i}`).join('\n');
    expect(await problems(() => parseRosterText(`id;nom\n${rows}\n`, 'r.csv'))).toEqual(['r.csv: split the roster into several exams']);
  });
});

describe('JSON rosters', () => {
  test('ids unique regardless of case, at least one candidate, names made one line', async () => {
    expect(checkRosterJson([{ id: 'a', name: '  Zoe\u0301\n N’Diaye ' }])).toEqual([{ id: 'a', name: 'Zoé N’Diaye' }]);
    expect(await problems(() => checkRosterJson([{ id: 'a', name: 'A' }, { id: 'A', name: 'B' }]))).toEqual(['candidates[1] id: duplicate candidate id "A" (first at candidates[0])']);
    expect(await problems(() => checkRosterJson([]))).toEqual(['candidates: the roster has no candidates']);
  });
});
