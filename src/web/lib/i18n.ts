/** The pages speak French (the default) or English; each page keeps its own words. */
export type Language = 'fr' | 'en';

const STORAGE_KEY = 'examlab-language';

/** The language chosen on this browser, else the browser's own when it is English, else French. */
export function pageLanguage(): Language {
  const chosen = localStorage.getItem(STORAGE_KEY);
  if (chosen === 'fr' || chosen === 'en') return chosen;
  return navigator.language.toLowerCase().startsWith('en') ? 'en' : 'fr';
}

export function chooseLanguage(language: Language): void {
  localStorage.setItem(STORAGE_KEY, language);
}

/** A page's words in both languages, with the same keys (the compiler checks). */
export function words<T extends Record<string, string>>(table: { fr: T; en: { [K in keyof T]: string } }, language: Language): T {
  return (language === 'en' ? table.en : table.fr) as T;
}

/** HTML-escapes text put into markup. */
export function esc(text: unknown): string {
  return String(text ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}
