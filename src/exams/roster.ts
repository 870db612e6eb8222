import { z } from 'zod';
import { InputError, type ErrorDetail } from '../util/errors.js';

/** A candidate id is also their SSH login at the gateway: letters, digits, ".", "_", "-". */
export const CANDIDATE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const CANDIDATE_ID_RULE = 'use letters, digits, ".", "_" or "-" (at most 64, starting with a letter or digit)';

/** Characters that have no place in a name and could disguise it: controls, invisible and direction overrides. */
const HIDDEN_CHARACTERS = /[\p{Cc}\u00AD\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF]/u;

/**
 * A person's name, as other systems hand it over: accents composed (NFC),
 * any run of spaces, tabs or line breaks made one space.
 */
export const personName = z
  .string()
  .transform((s) => s.normalize('NFC').replace(/\s+/gu, ' ').trim())
  .pipe(
    z
      .string()
      .min(1, 'required')
      .max(200, 'at most 200 characters')
      .refine((s) => !HIDDEN_CHARACTERS.test(s), 'contains control or invisible characters'),
  );

export const rosterEntrySchema = z.strictObject({
  id: z.string().regex(CANDIDATE_ID, CANDIDATE_ID_RULE),
  name: personName,
  email: z.email().optional(),
});
export type RosterEntry = z.output<typeof rosterEntrySchema>;

export const MAX_CANDIDATES = 500;

/** Validates a roster given as JSON (already shaped by the request schema): ids unique. */
export function checkRosterJson(entries: readonly RosterEntry[], source = 'candidates'): RosterEntry[] {
  const problems: ErrorDetail[] = [];
  const seen = new Map<string, string>();
  const checked: RosterEntry[] = [];
  entries.forEach((entry, i) => {
    const where = `${source}[${i}]`;
    const parsed = rosterEntrySchema.safeParse(entry);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) problems.push({ where: `${where} ${issue.path.join('.')}`, message: issue.message });
      return;
    }
    const first = seen.get(parsed.data.id.toLowerCase());
    if (first) problems.push({ where: `${where} id`, message: `duplicate candidate id "${parsed.data.id}" (first at ${first})` });
    else seen.set(parsed.data.id.toLowerCase(), where);
    checked.push(parsed.data);
  });
  if (entries.length > MAX_CANDIDATES) problems.push({ where: source, message: `${entries.length} candidates; at most ${MAX_CANDIDATES} per exam` });
  if (!entries.length) problems.push({ where: source, message: 'the roster has no candidates' });
  if (problems.length) throw new InputError(`${source}: invalid roster (${problems.length === 1 ? '1 problem' : `${problems.length} problems`})`, problems);
  return checked;
}

// ---------------------------------------------------------------------------
// Roster files: exports of the centres' own systems, as they are.

/** What a roster column may hold. */
export type RosterField = 'id' | 'name' | 'lastName' | 'firstName' | 'email';

/** One row of a file: its line (CSV) or row number (workbook) and its cells as text. */
export interface RosterRow {
  line: number;
  cells: string[];
}

/** A table read from a file, one way: a CSV with one separator, or one sheet of a workbook. */
export interface RosterTable {
  /** How it was read, for the operator: `CSV, Windows-1252, separator ";"`. */
  format: string;
  /** Where its rows are, before the line number: `roster.csv`, `roster.xlsx (Feuil1)`. */
  where: string;
  rows: RosterRow[];
  /** Records that could not even be split into cells (a quote never closed). */
  unreadable: ErrorDetail[];
}

export interface RosterImport {
  /** The candidates read, in file order. */
  entries: RosterEntry[];
  /** Rows left out, each with its line and why; the rest of the roster is kept. */
  rejected: ErrorDetail[];
  /** What was read otherwise than written, without losing a candidate (an unusable email). */
  warnings: ErrorDetail[];
  /** How the file was understood: its format, the header's line, which column gave what, the columns not used. */
  read: { format: string; headerLine: number; columns: Partial<Record<RosterField, string>>; ignoredColumns: string[] };
}

/**
 * Header cells as centres spell them, compared without accents, case,
 * punctuation or little words ("N° de candidat" is "numero candidat").
 * "Nom" and "Name" alone are the last name beside a first-name column,
 * the full name otherwise.
 */
const HEADERS: Record<string, RosterField | 'nameOrLastName'> = Object.fromEntries(
  Object.entries({
    id: [
      'id', 'identifiant', 'identifier', 'ident', 'candidat', 'candidate', 'id candidat', 'identifiant candidat', 'candidate id', 'candidat id',
      'numero', 'num', 'no', 'number', 'numero candidat', 'num candidat', 'no candidat', 'candidate number', 'candidate no', 'numero inscription',
      'no inscription', 'numero dossier', 'no dossier', 'matricule', 'login', 'identifiant connexion', 'username', 'user', 'utilisateur', 'code',
      'code candidat', 'student id', 'student number', 'numero etudiant', 'ine',
    ],
    name: ['full name', 'fullname', 'nom complet', 'nom prenom', 'prenom nom', 'identite', 'candidate name', 'nom candidat', 'student name', 'display name', 'nom affiche'],
    nameOrLastName: ['nom', 'name'],
    lastName: ['nom famille', 'nom usage', 'nom naissance', 'nom patronymique', 'last name', 'lastname', 'surname', 'family name'],
    firstName: ['prenom', 'prenoms', 'first name', 'firstname', 'given name', 'given names', 'forename', 'prenom usuel', 'prenom usage'],
    email: [
      'email', 'mail', 'e mail', 'courriel', 'mel', 'adresse email', 'adresse e mail', 'adresse mail', 'adresse courriel', 'adresse electronique',
      'email address', 'e mail address', 'mail address', 'email candidat', 'courriel candidat', 'mail candidat',
    ],
  }).flatMap(([field, words]) => words.map((w) => [w, field as RosterField | 'nameOrLastName'])),
);
const LITTLE_WORDS = new Set(['de', 'du', 'des', 'd', 'l', 'la', 'le', 'les', 'et', 'ou', 's', 'the', 'of', 'and']);

function headerKey(cell: string): string {
  return cell
    .normalize('NFD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/\bn\s*[°º]/g, 'numero ')
    .replace(/[^a-z0-9]+/g, ' ')
    .split(' ')
    .filter((w) => w && !LITTLE_WORDS.has(w))
    .join(' ');
}

/** Spreadsheet column letters: 0 → A, 26 → AA. */
function columnLetter(index: number): string {
  let n = index + 1;
  let letters = '';
  while (n > 0) {
    letters = String.fromCharCode(65 + ((n - 1) % 26)) + letters;
    n = Math.floor((n - 1) / 26);
  }
  return letters;
}

/** A value from the file, quoted for a message: shortened, control characters escaped. */
const quote = (value: string) => JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);

interface Header {
  line: number;
  columns: Partial<Record<RosterField, number>>;
  ignored: number[];
  cells: string[];
}

/** The fields a row names, first column winning; undefined unless it names an id and a name. */
function asHeader(row: RosterRow): Header & { usable: boolean } {
  const found = row.cells.map((cell) => HEADERS[headerKey(cell)]);
  const hasFirstName = found.includes('firstName');
  const columns: Partial<Record<RosterField, number>> = {};
  const ignored: number[] = [];
  // Explicit fields before the ambiguous "Nom", so "Nom complet;Nom" keeps the full name.
  const order = found.map((f, i) => ({ f, i })).sort((a, b) => Number(a.f === 'nameOrLastName') - Number(b.f === 'nameOrLastName'));
  for (const { f, i } of order) {
    const field: RosterField | undefined = f === 'nameOrLastName' ? (hasFirstName ? 'lastName' : 'name') : f;
    if (field && columns[field] === undefined) columns[field] = i;
    else if (row.cells[i]?.trim()) ignored.push(i);
  }
  const usable = columns.id !== undefined && (columns.name !== undefined || columns.lastName !== undefined || columns.firstName !== undefined);
  return { line: row.line, columns, ignored: ignored.sort((a, b) => a - b), cells: row.cells, usable };
}

/** How far into a file the header row may be (title rows, a date, a blank line above it). */
const HEADER_SEARCH_ROWS = 10;

function findHeader(table: RosterTable): Header | undefined {
  return table.rows.slice(0, HEADER_SEARCH_ROWS).map(asHeader).find((h) => h.usable);
}

const EXPECTED_HEADER =
  'expected a header row naming an identifier ("Identifiant", "N° candidat", "id"...) and a name ("Nom" and "Prénom", "Nom complet", "name"...), optionally an email ("Courriel", "email")';

/**
 * Reads a roster from the tables a file could be (a CSV split by each
 * separator, the sheets of a workbook): the one whose header row (among
 * its first lines) names the most known columns. Each row becomes a
 * candidate, or is left out with its line and the reason; duplicates are
 * named. Throws only when nothing can be used: no header, no candidate,
 * too many.
 */
export function importRoster(tables: readonly RosterTable[], source: string): RosterImport {
  const candidates = tables.flatMap((table) => {
    const header = findHeader(table);
    return header ? [{ table, header }] : [];
  });
  const score = (h: Header) => Object.keys(h.columns).length;
  const best = candidates.reduce<(typeof candidates)[number] | undefined>((a, b) => (!a || score(b.header) > score(a.header) ? b : a), undefined);
  if (!best) throw new InputError(`${source}: no roster header found`, noHeaderDetails(tables, source));
  const { table, header } = best;
  const col = (field: RosterField) => header.columns[field];
  const describe = (i: number) => `column ${columnLetter(i)} ${quote(header.cells[i]?.trim() ?? '')}`;

  const entries: RosterEntry[] = [];
  const rejected: ErrorDetail[] = [...table.unreadable];
  const warnings: ErrorDetail[] = [];
  const seen = new Map<string, number>();
  for (const row of table.rows) {
    if (row.line <= header.line || row.cells.every((c) => !c.trim())) continue;
    const where = `${table.where}:${row.line}`;
    const cell = (field: RosterField) => {
      const i = col(field);
      return i === undefined ? '' : (row.cells[i] ?? '').trim();
    };
    const problems: string[] = [];
    const id = cell('id');
    const idColumn = describe(col('id') as number);
    if (!id) problems.push(`no identifier (${idColumn})`);
    else if (!CANDIDATE_ID.test(id)) problems.push(`the identifier ${quote(id)} (${idColumn}) cannot be a login: ${CANDIDATE_ID_RULE}`);
    const fullName = cell('name') || [cell('firstName'), cell('lastName')].filter(Boolean).join(' ');
    const name = personName.safeParse(fullName);
    if (!name.success) {
      const nameColumns = (['name', 'lastName', 'firstName'] as const).map(col).filter((i): i is number => i !== undefined).map(describe).join(', ');
      problems.push(fullName.trim() ? `the name (${nameColumns}): ${name.error.issues[0]?.message}` : `no name (${nameColumns})`);
    }
    if (problems.length || !name.success) {
      rejected.push({ where, message: `${problems.join('; ')}; row left out` });
      continue;
    }
    const firstLine = seen.get(id.toLowerCase());
    if (firstLine !== undefined) {
      rejected.push({ where, message: `duplicate identifier ${quote(id)}, already on line ${firstLine}; row left out` });
      continue;
    }
    seen.set(id.toLowerCase(), row.line);
    const email = cell('email');
    const entry: RosterEntry = { id, name: name.data };
    if (email && z.email().safeParse(email).success) entry.email = email;
    else if (email) warnings.push({ where, message: `${quote(email)} (${describe(col('email') as number)}) is not an email address; candidate ${id} imported without one` });
    entries.push(entry);
  }

  if (entries.length > MAX_CANDIDATES) {
    throw new InputError(`${source}: ${entries.length} candidates; at most ${MAX_CANDIDATES} per exam`, [{ where: source, message: 'split the roster into several exams' }]);
  }
  if (!entries.length) {
    throw new InputError(`${source}: no candidate could be read`, rejected.length ? rejected : [{ where: `${table.where}:${header.line}`, message: 'the header is not followed by any candidate' }]);
  }
  return {
    entries,
    rejected,
    warnings,
    read: {
      format: table.format,
      headerLine: header.line,
      columns: Object.fromEntries(
        Object.entries(header.columns)
          .sort(([, a], [, b]) => a - b)
          .map(([field, i]) => [field, header.cells[i]?.trim() ?? '']),
      ),
      ignoredColumns: header.ignored.map((i) => header.cells[i]?.trim() ?? ''),
    },
  };
}

/** Why no table had a header: the row that came closest, said plainly. */
function noHeaderDetails(tables: readonly RosterTable[], source: string): ErrorDetail[] {
  const rows = tables.flatMap((table) => table.rows.slice(0, HEADER_SEARCH_ROWS).map((row) => ({ table, header: asHeader(row) })));
  const closest = rows.reduce<(typeof rows)[number] | undefined>((a, b) => (!a || Object.keys(b.header.columns).length > Object.keys(a.header.columns).length ? b : a), undefined);
  if (!closest || !Object.keys(closest.header.columns).length) {
    const first = tables[0]?.rows[0];
    return [
      {
        where: first ? `${tables[0]?.where}:${first.line}` : source,
        message: first ? `${EXPECTED_HEADER}; the file begins with ${quote(first.cells.join(' | '))}` : `the file is empty; ${EXPECTED_HEADER}`,
      },
    ];
  }
  const { table, header } = closest;
  const named = Object.entries(header.columns)
    .sort(([, a], [, b]) => a - b)
    .map(([field, i]) => `${field} in column ${columnLetter(i)} ${quote(header.cells[i]?.trim() ?? '')}`);
  const missing = header.columns.id === undefined ? 'an identifier column ("Identifiant", "N° candidat", "id"...): candidate ids are their logins' : 'a name column ("Nom" and "Prénom", "Nom complet", "name"...)';
  return [{ where: `${table.where}:${header.line}`, message: `this looks like the header (${named.join(', ')}) but it lacks ${missing}` }];
}

/** What the operator is told about an imported file: how many candidates, the rows left out and why, how it was read. */
export function importReport(imported: RosterImport) {
  const { entries, ...rest } = imported;
  return { imported: entries.length, ...rest };
}
