/**
 * Dates and times as a person reads them: in the exam's language and time
 * zone, on a 24-hour clock. Stored times stay ISO 8601 in UTC; only what is
 * printed or exported for people goes through here.
 */

export type Language = 'fr' | 'en';

/** British English for English: day before month and a 24-hour clock, as a French centre expects. */
const LOCALES: Record<Language, string> = { fr: 'fr-FR', en: 'en-GB' };

export interface DateStyle {
  language: Language;
  /** An IANA time zone, e.g. Europe/Paris. */
  timeZone: string;
}

/** The time zone of this host (the TZ variable, else the system's), UTC when unknown. */
export function hostTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

/** Whether the runtime knows this IANA time zone name. */
export function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(kind: 'dateTime' | 'time', style: DateStyle): Intl.DateTimeFormat {
  const key = `${kind}|${style.language}|${style.timeZone}`;
  let f = formatters.get(key);
  if (!f) {
    f = new Intl.DateTimeFormat(LOCALES[style.language], {
      ...(kind === 'dateTime' ? { dateStyle: 'short', timeStyle: 'short' } : { timeStyle: 'medium' }),
      timeZone: style.timeZone,
      hourCycle: 'h23',
    });
    formatters.set(key, f);
  }
  return f;
}

const asDate = (at: string | number | Date) => (at instanceof Date ? at : new Date(at));

/** A date that is not one is shown as it was given rather than failing a whole page. */
function format(kind: 'dateTime' | 'time', at: string | number | Date, style: DateStyle): string {
  const date = asDate(at);
  return Number.isNaN(date.getTime()) ? String(at) : formatter(kind, style).format(date);
}

/** "12/06/2025 14:03" (fr), "12/06/2025, 14:03" (en). */
export function formatDateTime(at: string | number | Date, style: DateStyle): string {
  return format('dateTime', at, style);
}

/** "14:03:27": a time of day, such as a deadline within the exam. */
export function formatTime(at: string | number | Date, style: DateStyle): string {
  return format('time', at, style);
}

/**
 * The wall-clock time in `timeZone` as a Date whose UTC fields hold it: what
 * a spreadsheet cell needs, as spreadsheets have no time zones and read a
 * date's UTC fields.
 */
export function wallClock(at: string | number | Date, timeZone: string): Date {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  }).formatToParts(asDate(at));
  const part = (type: Intl.DateTimeFormatPartTypes) => Number(parts.find((p) => p.type === type)?.value);
  return new Date(Date.UTC(part('year'), part('month') - 1, part('day'), part('hour'), part('minute'), part('second')));
}
