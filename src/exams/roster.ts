import { parse } from 'csv-parse/sync';
import { z } from 'zod';
import { InputError, errorMessage, type ErrorDetail } from '../util/errors.js';

/** A candidate id is also their SSH login at the gateway: letters, digits, ".", "_", "-". */
export const CANDIDATE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export const rosterEntrySchema = z.strictObject({
  id: z.string().regex(CANDIDATE_ID, 'use letters, digits, ".", "_" or "-" (at most 64, starting with a letter or digit)'),
  name: z.string().trim().min(1, 'required').max(200),
  email: z.email().optional(),
});
export type RosterEntry = z.infer<typeof rosterEntrySchema>;

export const MAX_CANDIDATES = 500;

const COLUMN_ALIASES: Record<string, 'id' | 'name' | 'email'> = {
  id: 'id',
  candidate: 'id',
  candidat: 'id',
  identifiant: 'id',
  name: 'name',
  nom: 'name',
  email: 'email',
  mail: 'email',
  'e-mail': 'email',
  courriel: 'email',
};

/**
 * Parses a CSV roster: a header row naming `id`, `name` and optionally
 * `email` (French headers and `;` separators, as spreadsheets export them,
 * are accepted), then one candidate per line. Every problem is reported
 * with its line.
 */
export function parseRosterCsv(text: string, source = 'roster.csv'): RosterEntry[] {
  const firstLine = text.replace(/^\uFEFF/, '').split(/\r?\n/, 1)[0] ?? '';
  const delimiter = firstLine.includes(';') && !firstLine.includes(',') ? ';' : ',';
  let records: { record: Record<string, string>; info: { lines: number } }[];
  const headerProblems: ErrorDetail[] = [];
  try {
    records = parse(text, {
      bom: true,
      delimiter,
      trim: true,
      skip_empty_lines: true,
      info: true,
      columns: (header: string[]) =>
        header.map((h, i) => {
          const column = COLUMN_ALIASES[h.trim().toLowerCase()];
          if (!column) headerProblems.push({ where: `${source}:1`, message: `unknown column "${h}" (column ${i + 1}); expected id, name and optionally email` });
          return column ?? `unknown:${h}`;
        }),
    }) as { record: Record<string, string>; info: { lines: number } }[];
  } catch (err) {
    throw new InputError(`${source}: not a readable CSV roster`, [{ where: source, message: errorMessage(err) }]);
  }
  if (headerProblems.length) throw new InputError(`${source}: invalid roster header`, headerProblems);
  if (!records.length) throw new InputError(`${source}: the roster has no candidates`, [{ where: source, message: 'expected a header row (id,name,email) and one line per candidate' }]);
  const header = Object.keys(records[0]?.record ?? {});
  const missing = ['id', 'name'].filter((c) => !header.includes(c));
  if (missing.length) throw new InputError(`${source}: invalid roster header`, missing.map((c) => ({ where: `${source}:1`, message: `missing column "${c}"` })));

  return checkRoster(
    records.map(({ record, info }) => ({ entry: { id: record.id ?? '', name: record.name ?? '', ...(record.email ? { email: record.email } : {}) }, where: `${source}:${info.lines}` })),
    source,
  );
}

/** Validates a roster given as JSON (already shaped by the request schema): ids unique. */
export function checkRosterJson(entries: readonly RosterEntry[], source = 'candidates'): RosterEntry[] {
  return checkRoster(entries.map((entry, i) => ({ entry, where: `${source}[${i}]` })), source);
}

function checkRoster(items: { entry: Record<string, string | undefined>; where: string }[], source: string): RosterEntry[] {
  const problems: ErrorDetail[] = [];
  const seen = new Map<string, string>();
  const entries: RosterEntry[] = [];
  for (const { entry, where } of items) {
    const parsed = rosterEntrySchema.safeParse(entry);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) problems.push({ where: `${where} ${issue.path.join('.')}`, message: issue.message });
      continue;
    }
    const key = parsed.data.id.toLowerCase();
    const first = seen.get(key);
    if (first) problems.push({ where: `${where} id`, message: `duplicate candidate id "${parsed.data.id}" (first at ${first})` });
    else seen.set(key, where);
    entries.push(parsed.data);
  }
  if (items.length > MAX_CANDIDATES) problems.push({ where: source, message: `${items.length} candidates; at most ${MAX_CANDIDATES} per exam` });
  if (!items.length) problems.push({ where: source, message: 'the roster has no candidates' });
  if (problems.length) throw new InputError(`${source}: invalid roster (${problems.length === 1 ? '1 problem' : `${problems.length} problems`})`, problems);
  return entries;
}
