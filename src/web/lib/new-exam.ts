/**
 * The operator's pages for a roster file as the centre's system exported it:
 * a new exam (a scenario and the file), and the list of an exam not started
 * yet replaced by another file. A file is read by the daemon as soon as it
 * is chosen (nothing is created), so the operator sees which candidates and
 * which rows left out before going on; then the access sheet, the one time
 * the candidates' tokens are shown, to print or download.
 */
import { api, apiFile, saveFile } from './api.js';
import { esc, type Language } from './i18n.js';
import { fill, type StaffWords } from './staff-words.js';

export interface NewExamPage {
  main: HTMLElement;
  w: StaffWords;
  language: Language;
  showError: (err: unknown) => void;
  clearMessages: () => void;
}

interface RosterReport {
  candidates: { id: string; name: string; email?: string }[];
  imported: number;
  rejected: { where?: string; message: string }[];
  warnings: { where?: string; message: string }[];
  read: { format: string; headerLine: number; columns: Record<string, string>; ignoredColumns: string[] };
}

interface Created {
  exam: { id: string; title: string };
  candidates: { id: string; name: string; token: string; ssh: string }[];
  roster?: Omit<RosterReport, 'candidates'>;
}

/** A roster file chosen on the page, as read from the disk. */
interface RosterFile {
  name: string;
  bytes: Uint8Array<ArrayBuffer>;
  type: string;
}

const ROSTER_TYPES = '.csv,.txt,.tsv,.xlsx,text/csv,text/plain,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';

export async function showNewExam(page: NewExamPage): Promise<void> {
  const { w } = page;
  const { scenarios } = await api<{ scenarios: string[] }>('GET', '/api/scenarios');
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  page.main.innerHTML = `<h2>${esc(w.newExam)}</h2>
    <form id="new-exam" class="form" novalidate>
      <label>${esc(w.scenario)} <select id="exam-scenario" required>${scenarios.map((s) => `<option value="${esc(s)}">${esc(s)}</option>`).join('')}</select></label>
      <label>${esc(w.examTitle)} <input id="exam-title" maxlength="200" placeholder="${esc(w.examTitleHint)}"></label>
      <label>${esc(w.rosterFile)} <input id="roster-file" type="file" accept="${ROSTER_TYPES}" required></label>
      <p class="muted small">${esc(w.rosterFileHelp)}</p>
      <div id="roster-preview"></div>
      <fieldset><legend>${esc(w.startLegend)}</legend>
        <label class="inline"><input type="radio" name="exam-start" value="manual" checked> ${esc(w.startManual)}</label>
        <label class="inline"><input type="radio" name="exam-start" value="now"> ${esc(w.startNow)}</label>
        <label class="inline"><input id="exam-prepare" type="checkbox"> ${esc(w.prepareAhead)}</label>
      </fieldset>
      <label>${esc(w.duration)} <input id="exam-duration" type="number" min="1" max="1440" step="1" placeholder="${esc(w.durationHint)}"> ${esc(w.minutes)}</label>
      <label>${esc(w.spares)} <input id="exam-spares" type="number" min="0" max="10" step="1" value="0"></label>
      <label>${esc(w.examMode)} <select id="exam-mode"><option value="exam">${esc(w.modeExam)}</option><option value="practice">${esc(w.modePractice)}</option></select></label>
      <label>${esc(w.timeZone)} <input id="exam-zone" value="${esc(zone)}" required></label>
      <p><button type="submit" id="create-exam">${esc(w.createExam)}</button></p>
    </form>`;
  const $ = <T extends HTMLElement>(id: string) => page.main.querySelector<T>(`#${id}`) as T;
  const roster = rosterPicker(page, $<HTMLInputElement>('roster-file'), $('roster-preview'));

  const startNow = () => page.main.querySelector<HTMLInputElement>('input[name="exam-start"]:checked')?.value === 'now';
  for (const radio of page.main.querySelectorAll<HTMLInputElement>('input[name="exam-start"]')) {
    radio.addEventListener('change', () => {
      $<HTMLInputElement>('exam-prepare').disabled = startNow();
      if (startNow()) $<HTMLInputElement>('exam-prepare').checked = false;
    });
  }

  $<HTMLFormElement>('new-exam').addEventListener('submit', async (e) => {
    e.preventDefault();
    page.clearMessages();
    const file = roster.file();
    if (!file) return page.showError(new Error(w.rosterFirst));
    const minutes = $<HTMLInputElement>('exam-duration').valueAsNumber;
    const body = {
      scenario: $<HTMLSelectElement>('exam-scenario').value,
      ...($<HTMLInputElement>('exam-title').value.trim() ? { title: $<HTMLInputElement>('exam-title').value.trim() } : {}),
      rosterFile: base64(file.bytes),
      start: startNow() ? 'now' : 'manual',
      prepare: $<HTMLInputElement>('exam-prepare').checked,
      spares: $<HTMLInputElement>('exam-spares').valueAsNumber || 0,
      mode: $<HTMLSelectElement>('exam-mode').value,
      timeZone: $<HTMLInputElement>('exam-zone').value.trim(),
      ...(Number.isFinite(minutes) ? { duration: `${minutes}m` } : {}),
    };
    $<HTMLButtonElement>('create-exam').disabled = true;
    try {
      showAccessSheet(page, await api<Created>('POST', '/api/exams', body));
    } catch (err) {
      page.showError(err);
      $<HTMLButtonElement>('create-exam').disabled = false;
    }
  });
}

/**
 * A roster file input: each file chosen is read by the daemon at once
 * (nothing created) and what it read is shown in `preview`; `file()` is
 * the last file from which at least one candidate was read.
 */
function rosterPicker(page: NewExamPage, input: HTMLInputElement, preview: HTMLElement): { file: () => RosterFile | undefined } {
  let file: RosterFile | undefined;
  input.addEventListener('change', async () => {
    page.clearMessages();
    const chosen = input.files?.[0];
    file = undefined;
    preview.innerHTML = '';
    if (!chosen) return;
    const chosenFile = { name: chosen.name, bytes: new Uint8Array(await chosen.arrayBuffer()), type: contentType(chosen) };
    try {
      const name = chosen.name.replace(/[/\\\x00-\x1f]/g, '_').slice(0, 200);
      const data = await apiFile<RosterReport>('POST', `/api/roster/check?name=${encodeURIComponent(name)}`, chosenFile.bytes, chosenFile.type);
      if (data.imported > 0) file = chosenFile;
      preview.innerHTML = previewHtml(page.w, chosen.name, data);
    } catch (err) {
      page.showError(err);
    }
  });
  return { file: () => file };
}

/** The roster of an exam not started yet, replaced by a file: every candidate gets a new token, hence a new access sheet. */
export async function showRosterReplace(page: NewExamPage, exam: { id: string; title: string; status: string }): Promise<void> {
  const { w } = page;
  page.main.innerHTML = `<h2>${esc(fill(w.replaceRosterTitle, { title: exam.title }))}</h2>
    <form id="replace-roster" class="form" novalidate>
      <p class="warn">${esc(w.replaceRosterWarning)}</p>
      <label>${esc(w.rosterFile)} <input id="roster-file" type="file" accept="${ROSTER_TYPES}" required></label>
      <p class="muted small">${esc(w.rosterFileHelp)}</p>
      <div id="roster-preview"></div>
      <p><button type="submit" id="replace-roster-submit" class="danger">${esc(w.replaceRoster)}</button> <a href="#/exam/${esc(exam.id)}">${esc(w.cancel)}</a></p>
    </form>`;
  const $ = <T extends HTMLElement>(id: string) => page.main.querySelector<T>(`#${id}`) as T;
  const roster = rosterPicker(page, $<HTMLInputElement>('roster-file'), $('roster-preview'));
  $<HTMLFormElement>('replace-roster').addEventListener('submit', async (e) => {
    e.preventDefault();
    page.clearMessages();
    const file = roster.file();
    if (!file) return page.showError(new Error(w.rosterFirst));
    $<HTMLButtonElement>('replace-roster-submit').disabled = true;
    try {
      const data = await apiFile<Omit<Created, 'exam'>>('PUT', `/api/exams/${exam.id}/candidates`, file.bytes, file.type);
      showAccessSheet(page, { exam: { id: exam.id, title: exam.title }, candidates: data.candidates, ...(data.roster ? { roster: data.roster } : {}) });
    } catch (err) {
      page.showError(err);
      $<HTMLButtonElement>('replace-roster-submit').disabled = false;
    }
  });
}

/** What the daemon read from the file: how, which candidates, which rows left out and why. */
function previewHtml(w: StaffWords, name: string, r: RosterReport): string {
  const problems = (title: string, list: RosterReport['rejected'], cls: string) =>
    list.length ? `<h4 class="${cls}">${esc(fill(title, { n: list.length }))}</h4><ul class="${cls}">${list.map((p) => `<li>${p.where ? `<b>${esc(p.where)}</b> : ` : ''}${esc(p.message)}</li>`).join('')}</ul>` : '';
  const columns = Object.entries(r.read.columns).map(([field, header]) => `${esc(header)} → ${esc(field)}`).join(', ');
  return `<section class="roster-read">
    <p><b>${esc(fill(w.rosterRead, { n: r.imported, name }))}</b> <span class="muted small">${esc(r.read.format)} · ${esc(fill(w.headerLine, { n: r.read.headerLine }))} · ${columns}${r.read.ignoredColumns.length ? ` · ${esc(w.ignoredColumns)} ${r.read.ignoredColumns.map(esc).join(', ')}` : ''}</span></p>
    ${problems(w.rowsLeftOut, r.rejected, 'bad')}${problems(w.rosterWarnings, r.warnings, 'muted')}
    <table class="small roster"><thead><tr><th>${esc(w.candidateId)}</th><th>${esc(w.candidate)}</th><th>${esc(w.email)}</th></tr></thead><tbody>
    ${r.candidates.map((c) => `<tr><td>${esc(c.id)}</td><td>${esc(c.name)}</td><td>${esc(c.email ?? '')}</td></tr>`).join('')}</tbody></table></section>`;
}

/** The candidates' access, shown once: print it or download it now. */
function showAccessSheet(page: NewExamPage, created: Created): void {
  const { w } = page;
  const candidatePage = new URL('/candidate.html', location.href).href;
  page.main.innerHTML = `<section id="access-sheet">
    <h2>${esc(fill(w.accessSheetTitle, { title: created.exam.title }))}</h2>
    <p class="warn no-print">${esc(w.tokensOnce)}</p>
    <p class="no-print"><button type="button" id="print-access">${esc(w.print)}</button>
      <button type="button" id="download-access">${esc(w.downloadAccess)}</button>
      <a href="#/exam/${esc(created.exam.id)}">${esc(w.openRoom)}</a></p>
    <p>${esc(w.candidatePageAt)} <code>${esc(candidatePage)}</code></p>
    <table class="access"><thead><tr><th>${esc(w.candidate)}</th><th>${esc(w.candidateId)}</th><th>${esc(w.token)}</th><th>${esc(w.sshCommand)}</th></tr></thead><tbody>
    ${created.candidates.map((c) => `<tr data-candidate="${esc(c.id)}"><td>${esc(c.name)}</td><td>${esc(c.id)}</td><td><code class="token">${esc(c.token)}</code></td><td><code>${esc(c.ssh)}</code></td></tr>`).join('')}
    </tbody></table>
    ${created.roster?.rejected.length ? `<p class="bad no-print">${esc(fill(w.rowsLeftOut, { n: created.roster.rejected.length }))}: ${created.roster.rejected.map((p) => esc(`${p.where ?? ''} ${p.message}`.trim())).join(' · ')}</p>` : ''}
    </section>`;
  page.main.querySelector('#print-access')?.addEventListener('click', () => window.print());
  page.main.querySelector('#download-access')?.addEventListener('click', () => {
    const rows = [['id', 'name', 'token', 'ssh', 'page'], ...created.candidates.map((c) => [c.id, c.name, c.token, c.ssh, candidatePage])];
    // French Excel reads ";" with a BOM; others ",".
    const sep = page.language === 'fr' ? ';' : ',';
    const text = `\ufeff${rows.map((r) => r.map((cell) => csvCell(cell, sep)).join(sep)).join('\r\n')}\r\n`;
    saveFile(new Blob([text], { type: 'text/csv;charset=utf-8' }), `acces-${created.exam.id}.csv`);
  });
}

/** A CSV cell: quoted where needed, and text a spreadsheet would take for a formula made plain text. */
function csvCell(value: string, sep: string): string {
  const text = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return text.includes(sep) || /["\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** The type the daemon reads a roster by; browsers leave it empty for some extensions. */
function contentType(file: File): string {
  if (/\.xlsx$/i.test(file.name)) return 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';
  if (/\.(csv|txt|tsv)$/i.test(file.name)) return 'text/csv';
  return file.type || 'application/octet-stream';
}

function base64(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}
