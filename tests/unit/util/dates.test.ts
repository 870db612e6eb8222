import { formatDateTime, formatTime, isTimeZone, wallClock } from '../../../src/util/dates.js';

describe('dates as people read them', () => {
  const summer = '2025-06-12T20:27:01.000Z';
  const winter = '2025-12-01T20:27:01.000Z';

  test('French: a 24-hour clock in the exam time zone, summer and winter time', () => {
    expect(formatTime(summer, { language: 'fr', timeZone: 'Europe/Paris' })).toBe('22:27:01');
    expect(formatTime(winter, { language: 'fr', timeZone: 'Europe/Paris' })).toBe('21:27:01');
    expect(formatDateTime(summer, { language: 'fr', timeZone: 'Europe/Paris' })).toBe('12/06/2025 22:27');
    // Overseas centres: the same instant on their own clock.
    expect(formatTime(summer, { language: 'fr', timeZone: 'Indian/Reunion' })).toBe('00:27:01');
    expect(formatDateTime(summer, { language: 'fr', timeZone: 'Indian/Reunion' })).toBe('13/06/2025 00:27');
  });

  test('English: day before month, still a 24-hour clock', () => {
    expect(formatTime(summer, { language: 'en', timeZone: 'Europe/Paris' })).toBe('22:27:01');
    expect(formatDateTime(summer, { language: 'en', timeZone: 'America/Cayenne' })).toBe('12/06/2025, 17:27');
  });

  test('a value that is not a date is shown as given', () => {
    expect(formatDateTime('now', { language: 'fr', timeZone: 'Europe/Paris' })).toBe('now');
  });

  test('time zones are checked by name', () => {
    expect(isTimeZone('Europe/Paris')).toBe(true);
    expect(isTimeZone('Paris')).toBe(false);
  });

  test("a spreadsheet date carries the wall clock of the exam's time zone", () => {
    expect(wallClock(summer, 'Europe/Paris').toISOString()).toBe('2025-06-12T22:27:01.000Z');
    expect(wallClock(winter, 'Europe/Paris').toISOString()).toBe('2025-12-01T21:27:01.000Z');
    expect(wallClock(summer, 'UTC').toISOString()).toBe(summer);
  });
});
