import type { Workbook } from 'exceljs';

/**
 * What every spreadsheet export shares. Names, comments and check output
 * are free text from candidates, centres and lab machines: a cell a
 * spreadsheet would run as a formula (one starting with =, +, -, @, a tab
 * or a carriage return) is made plain text by a leading apostrophe, the
 * mark Excel and LibreOffice themselves use for "text as typed".
 */
export function neutraliseFormula(text: string): string {
  return /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
}

/** CSV as programs read it (",", decimal point), or as Excel on French Windows opens it (";", decimal comma, UTF-8 BOM). */
export const CSV_DIALECTS = ['plain', 'excel-fr'] as const;
export type CsvDialect = (typeof CSV_DIALECTS)[number];

export const XLSX_CONTENT_TYPE = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';

/** Points as people write them: whole numbers bare, otherwise two decimals. */
export function formatPoints(n: number, decimalComma = false): string {
  const text = Number.isInteger(n) ? String(n) : n.toFixed(2);
  return decimalComma ? text.replace('.', ',') : text;
}

/** An empty workbook. exceljs takes long to load: it is loaded when a workbook is read or written, not with exams/. */
export async function newWorkbook(): Promise<Workbook> {
  const { default: ExcelJS } = await import('exceljs');
  return new ExcelJS.Workbook();
}
