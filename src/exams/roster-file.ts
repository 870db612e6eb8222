import { parse } from 'csv-parse/sync';
import { InputError, errorMessage, type ErrorDetail } from '../util/errors.js';
import { importRoster, type RosterImport, type RosterRow, type RosterTable } from './roster.js';
import { newWorkbook } from './spreadsheet.js';

/**
 * Roster files as centres export them, unedited: CSV (UTF-8 with or
 * without BOM, UTF-16 with BOM, or Windows-1252 as Excel saves it on
 * French Windows; separated by ";", "," or tabs) or an XLSX workbook.
 * The content decides, not the name or the Content-Type.
 */
export async function readRosterFile(bytes: Uint8Array, name = 'roster'): Promise<RosterImport> {
  const kind = sniff(bytes);
  const source = /\.[A-Za-z0-9]+$/.test(name) ? name : `${name}.${kind === 'xlsx' ? 'xlsx' : 'csv'}`;
  switch (kind) {
    case 'empty':
      throw new InputError(`${source}: the file is empty`);
    case 'xls':
      throw new InputError(`${source}: an Excel 97-2003 workbook (.xls) cannot be read`, [{ where: source, message: 'save it as "Classeur Excel (.xlsx)" or as CSV' }]);
    case 'ods':
      throw new InputError(`${source}: an OpenDocument spreadsheet (.ods) cannot be read`, [{ where: source, message: 'save it as .xlsx or as CSV' }]);
    case 'xlsx':
      return importRoster(await workbookTables(bytes, source), source);
    case 'text': {
      const { text, encoding } = decodeText(bytes);
      if (text.includes('\u0000')) throw new InputError(`${source}: neither a CSV text file nor an XLSX workbook`);
      return parseRosterText(text, source, encoding);
    }
  }
}

/** A roster already as text (a CSV pasted in a request): the separator is found from its header. */
export function parseRosterText(text: string, source = 'roster.csv', encoding?: string): RosterImport {
  const tables = ([';', ',', '\t'] as const).map((delimiter) => csvTable(text.replace(/^\uFEFF/, ''), delimiter, source, encoding));
  return importRoster(tables, source);
}

type Kind = 'empty' | 'xlsx' | 'xls' | 'ods' | 'text';

const startsWith = (bytes: Uint8Array, signature: readonly number[], at = 0) => signature.every((b, i) => bytes[at + i] === b);

function sniff(bytes: Uint8Array): Kind {
  if (!bytes.length) return 'empty';
  if (startsWith(bytes, [0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1])) return 'xls';
  if (startsWith(bytes, [0x50, 0x4b, 0x03, 0x04])) {
    // An OpenDocument file stores its type, uncompressed, as the first entry of the zip.
    const head = Buffer.from(bytes.subarray(30, 100)).toString('latin1');
    return head.startsWith('mimetypeapplication/vnd.oasis.opendocument') ? 'ods' : 'xlsx';
  }
  return 'text';
}

/** UTF-8 unless the bytes are not valid UTF-8, then Windows-1252 (Excel's "CSV (séparateur : point-virgule)"). */
export function decodeText(bytes: Uint8Array): { text: string; encoding: string } {
  if (startsWith(bytes, [0xff, 0xfe])) return { text: new TextDecoder('utf-16le').decode(bytes), encoding: 'UTF-16' };
  if (startsWith(bytes, [0xfe, 0xff])) return { text: new TextDecoder('utf-16be').decode(bytes), encoding: 'UTF-16' };
  const bom = startsWith(bytes, [0xef, 0xbb, 0xbf]);
  try {
    return { text: new TextDecoder('utf-8', { fatal: true }).decode(bytes), encoding: bom ? 'UTF-8 with BOM' : 'UTF-8' };
  } catch {
    // `stream: true` takes ICU's real Windows-1252 table: Node 20's one-shot fast path decodes it as Latin-1,
    // turning ’ œ € (0x80-0x9F) into control characters (nodejs/node#56542).
    const decoder = new TextDecoder('windows-1252');
    return { text: decoder.decode(bytes, { stream: true }) + decoder.decode(), encoding: 'Windows-1252' };
  }
}

const SEPARATOR_NAMES: Record<string, string> = { ';': '";"', ',': '","', '\t': 'tab' };

function csvTable(text: string, delimiter: string, source: string, encoding: string | undefined): RosterTable {
  const unreadable: ErrorDetail[] = [];
  let lastLine = 0;
  const records = parse(text, {
    delimiter,
    info: true,
    relax_column_count: true,
    // A quote inside a name (Jean "Jo" Martin) is kept as written.
    relax_quotes: true,
    skip_empty_lines: true,
    skip_records_with_error: true,
    on_skip: (err) => {
      if (!err) return undefined;
      if (err.code === 'CSV_QUOTE_NOT_CLOSED') {
        unreadable.push({ where: `${source}:${lastLine + 1}`, message: 'a quote opened here is never closed, so the rest of the file cannot be read; rows left out' });
      } else {
        unreadable.push({ where: `${source}:${err.lines}`, message: `cannot be read: ${err.message.replace(/ at line \d+.*$/, '')}; row left out` });
      }
      return undefined;
    },
    on_record: (record: string[], { lines }) => {
      lastLine = lines;
      return record;
    },
  }) as unknown as { record: string[]; info: { lines: number } }[];
  return {
    format: `CSV, ${encoding ?? 'text'}, separator ${SEPARATOR_NAMES[delimiter]}`,
    where: source,
    rows: records.map(({ record, info }) => ({ line: info.lines, cells: record })),
    unreadable,
  };
}

async function workbookTables(bytes: Uint8Array, source: string): Promise<RosterTable[]> {
  const workbook = await newWorkbook();
  try {
    await workbook.xlsx.load(Buffer.from(bytes) as unknown as Parameters<typeof workbook.xlsx.load>[0]);
  } catch (err) {
    throw new InputError(`${source}: not a readable XLSX workbook`, [{ where: source, message: errorMessage(err) }]);
  }
  return workbook.worksheets.map((sheet) => {
    const rows: RosterRow[] = [];
    // cell.text is what Excel shows: a number's digits, a hyperlink's or a formula result's text.
    sheet.eachRow((row, line) => rows.push({ line, cells: Array.from({ length: row.cellCount }, (_, i) => row.getCell(i + 1).text) }));
    return { format: `XLSX, sheet ${JSON.stringify(sheet.name)}`, where: `${source} (${sheet.name})`, rows, unreadable: [] };
  });
}
