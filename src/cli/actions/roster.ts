import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { importReport, readRosterFile } from '../../exams/index.js';
import { InputError, errorMessage } from '../../util/errors.js';
import { Exit, EXIT } from '../context.js';
import { table } from '../output.js';

/** Text from the file, shown safely on a terminal: control characters escaped. */
const shown = (text: string) => JSON.stringify(text);

export async function rosterCheck(file: string, opts: { json?: boolean }): Promise<void> {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new InputError(`cannot read ${file}: ${errorMessage(err)}`);
  }
  const imported = await readRosterFile(bytes, basename(file));
  const { read, rejected, warnings } = imported;
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ candidates: imported.entries, ...importReport(imported) }, null, 2)}\n`);
  } else {
    const say = (line = '') => process.stdout.write(`${line}\n`);
    say(`${file}: ${read.format}; header on line ${read.headerLine}`);
    say(`  columns: ${Object.entries(read.columns).map(([field, header]) => `${field} ← ${shown(header)}`).join(', ')}`);
    if (read.ignoredColumns.length) say(`  not used: ${read.ignoredColumns.map(shown).join(', ')}`);
    say();
    say(table([['ID', 'NAME', 'EMAIL'], ...imported.entries.map((e) => [e.id, e.name, e.email ?? ''])], { indent: '  ' }));
    for (const [title, list] of [['left out', rejected], ['warnings', warnings]] as const) {
      if (!list.length) continue;
      say(`\n${list.length} ${title}:`);
      for (const p of list) say(`  ${p.where}: ${p.message}`);
    }
    say(`\n${imported.entries.length} candidate(s) read, ${rejected.length} row(s) left out`);
  }
  if (rejected.length) throw new Exit(EXIT.failed);
}
