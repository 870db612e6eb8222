/**
 * The staff pages (operator and jury), one page app on index.html:
 * sign-in, the exams, one exam's room view kept live by the daemon's event
 * stream, one candidate's detail (checks, report, manual marks, recordings),
 * the downloads and the audit log. Everything comes from the HTTP API;
 * every request goes through lib/api.ts.
 */
import * as AsciinemaPlayer from 'asciinema-player';
import { Terminal } from '@xterm/xterm';
import { api, ApiError, apiFetch, refusal, saveFile } from './lib/api.js';
import { openEventStream } from './lib/event-stream.js';
import { chooseLanguage, esc, pageLanguage, type Language } from './lib/i18n.js';
import { showNewExam, showRosterReplace } from './lib/new-exam.js';
import { currentSession, signIn, signOut, type StaffSession } from './lib/staff-session.js';
import { fill, staffWords, type StaffWords } from './lib/staff-words.js';

interface CandidateSummary {
  id: string;
  name: string;
  email?: string;
  phase: string;
  detail?: string;
  revoked: boolean;
  extensionMs: number;
  offeredAt?: string;
  deadline?: string;
  remainingSeconds?: number;
  lab?: { id: string; state: string; detail?: string };
  finalRunId?: string;
  /** Live sessions (terminal or SSH), when the daemon reports them. */
  connected?: number;
  lastActivityAt?: string;
}

interface ExamSummary {
  id: string;
  title: string;
  scenario: { id: string; file?: string; language?: string };
  timeZone: string;
  mode: string;
  status: string;
  durationMs: number;
  startedAt?: string;
  endedAt?: string;
  progress: {
    total: number;
    ready: number;
    failed: number;
    byPhase: Record<string, number>;
    labs: Record<string, number>;
    spares: { wanted: number; ready: number; building: number };
  };
  candidates: CandidateSummary[];
}

interface Points {
  points: number;
  maxPoints: number;
}

interface CandidateResult {
  candidate: { id: string; name: string };
  phase: string;
  runId?: string;
  gradedAt?: string;
  auto: Points;
  manual: Points;
  total: Points & { percent: number; passMark: number; passed: boolean };
  complete: boolean;
  pending: string[];
  checks: { id: string; title: string; machine: string; status: string; points: number; maxPoints: number; expected: string; actual: string; evidence: string; message?: string }[];
  manualCriteria: { id: string; title: string; status: string; points: number; maxPoints: number; level?: string; comment?: string; markedBy?: string; markedAt?: string }[];
  report?: ReportRecord;
  /** The option each fault pool drew for this candidate. */
  faults?: Record<string, string>;
}

interface FaultPool {
  id: string;
  title: string;
  options: { id: string; title: string }[];
}

interface ReportRecord {
  diagnosis: string;
  actions: string;
  result: string;
  revision: number;
  submittedAt?: string;
  updatedAt?: string;
}

interface Criterion {
  id: string;
  title: string;
  description?: string;
  levels: { id: string; title: string; points: number }[];
}

interface Recording {
  id: string;
  machine: string;
  via: string;
  startedAt: string;
  endedAt?: string;
  live: boolean;
  bytes: number;
}

let language: Language = pageLanguage();
let w: StaffWords = staffWords(language);
let session: StaffSession | undefined;
/** What the current view started (streams, timers, players), stopped when it changes. */
let teardown: (() => void)[] = [];
/** The server's clock minus this browser's, from the last summary. */
let skewMs = 0;

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const main = () => $('main');
const enc = encodeURIComponent;

// ---------- messages ----------

function plain(err: unknown): string {
  if (err instanceof ApiError) {
    const lead = (w as Record<string, string>)[`err${err.status}`] ?? (err.status >= 500 ? w.err500 : w.err400);
    const details = err.details.filter((d) => d.message && !err.message.includes(d.message)).map((d) => (d.where ? `${d.where}: ${d.message}` : d.message));
    return `${lead}. ${err.message}${details.length ? ` (${details.join('; ')})` : ''}`;
  }
  if (err instanceof TypeError) return `${w.errNetwork}.`;
  return String((err as Error)?.message ?? err);
}

function showError(err: unknown): void {
  const box = $('error');
  box.textContent = plain(err);
  box.hidden = false;
  $('notice').hidden = true;
  if (err instanceof ApiError && err.status === 401) void start();
}

function notice(text: string): void {
  $('error').hidden = true;
  const box = $('notice');
  box.textContent = text;
  box.hidden = false;
}

function clearMessages(): void {
  $('error').hidden = true;
  $('notice').hidden = true;
}

// ---------- formatting ----------

function when(iso: string | undefined, timeZone?: string, style: Intl.DateTimeFormatOptions = { dateStyle: 'short', timeStyle: 'medium' }): string {
  if (!iso) return '';
  try {
    return new Intl.DateTimeFormat(language === 'en' ? 'en-GB' : 'fr-FR', { timeZone, hourCycle: 'h23', ...style }).format(new Date(iso));
  } catch {
    return iso;
  }
}

function clock(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${h}:${String(m).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

/** An actor as the audit writes it (`jury:dupont`) as people read it (`dupont (jury)`). */
const actorName = (actor: string | undefined) => (actor ?? '').replace(/^([a-z]+):(.+)$/, '$2 ($1)');
/** French puts a (narrow no-break) space before a colon, English does not. */
const colon = () => (language === 'fr' ? '\u202f:' : ':');
const serverNow = () => Date.now() + skewMs;
const phaseWord = (p: string) => (w as Record<string, string>)[`phase_${p}`] ?? p;
const statusWord = (s: string) => (w as Record<string, string>)[`status_${s}`] ?? s;
const labWord = (s: string | undefined) => (s ? ((w as Record<string, string>)[`lab_${s}`] ?? s) : '');
const checkWord = (s: string) => (w as Record<string, string>)[`check_${s}`] ?? s;
/** Why a result is not final yet, in the page's language (the daemon's `pending` says the same in English). */
const pendingWords = (r: CandidateResult) => [
  ...(r.runId ? [] : [w.pendingGrade]),
  ...(r.checks.some((c) => c.status === 'error') ? [fill(w.pendingErrors, { ids: r.checks.filter((c) => c.status === 'error').map((c) => c.id).join(', ') })] : []),
  ...(r.manualCriteria.some((m) => m.status === 'unmarked') ? [fill(w.pendingMarks, { ids: r.manualCriteria.filter((m) => m.status === 'unmarked').map((m) => m.id).join(', ') })] : []),
];
const score = (t: CandidateResult['total']) => `${t.points} / ${t.maxPoints} (${t.percent.toLocaleString(language === 'en' ? 'en-GB' : 'fr-FR')} %)`;

/** Keeps the page's clock in step with the server's: a deadline and the seconds the server says are left. */
function syncClock(exam: ExamSummary): void {
  const samples = exam.candidates.filter((c) => c.deadline && c.remainingSeconds !== undefined && c.remainingSeconds > 0);
  const c = samples[0];
  if (c?.deadline !== undefined && c.remainingSeconds !== undefined) skewMs = Date.parse(c.deadline) - c.remainingSeconds * 1000 - Date.now();
}

function timeLeftCell(c: CandidateSummary): string {
  if (!c.deadline || (c.phase !== 'active' && c.phase !== 'provisioning')) return '';
  return `<span class="countdown" data-deadline="${esc(c.deadline)}">${clock(Date.parse(c.deadline) - serverNow())}</span>`;
}

function tickCountdowns(): void {
  for (const el of document.querySelectorAll<HTMLElement>('[data-deadline]')) {
    const left = Date.parse(el.dataset.deadline as string) - serverNow();
    el.textContent = clock(left);
    el.classList.toggle('low', left < 5 * 60_000);
  }
}

// ---------- confirmation ----------

/** Asks before an action; with `minutes`, asks for a number of minutes too (null when cancelled). */
function ask(text: string, minutes?: number): Promise<number | boolean | null> {
  const dialog = $<HTMLDialogElement>('confirm');
  $('confirm-text').textContent = text;
  const input = $<HTMLInputElement>('confirm-minutes');
  $('confirm-minutes-row').hidden = minutes === undefined;
  input.value = String(minutes ?? '');
  $('confirm-ok').textContent = w.confirm;
  $('confirm-cancel').textContent = w.cancel;
  $('confirm-minutes-label').textContent = w.minutes;
  dialog.returnValue = '';
  dialog.showModal();
  (minutes === undefined ? $('confirm-cancel') : input).focus();
  return new Promise((resolve) => {
    dialog.addEventListener(
      'close',
      () => {
        if (dialog.returnValue !== 'ok') return resolve(null);
        if (minutes === undefined) return resolve(true);
        const n = Number(input.value);
        resolve(Number.isFinite(n) && n > 0 ? n : null);
      },
      { once: true },
    );
  });
}

// ---------- downloads ----------

async function download(path: string, filename: string): Promise<void> {
  try {
    const res = await apiFetch(path);
    if (!res.ok) throw await refusal(res);
    saveFile(await res.blob(), filename);
  } catch (err) {
    showError(err);
  }
}

const downloadButton = (label: string, path: string, filename: string) =>
  `<button type="button" class="link" data-download="${esc(path)}" data-filename="${esc(filename)}">${esc(label)}</button>`;

function examDownloads(examId: string): string {
  const base = `/api/exams/${examId}`;
  return `<section class="downloads"><h2>${esc(w.downloads)}</h2><p>
    ${downloadButton(w.csv, `${base}/results.csv`, `results-${examId}.csv`)}
    ${downloadButton(w.csvFr, `${base}/results.csv?dialect=excel-fr`, `resultats-${examId}.csv`)}
    ${downloadButton(w.json, `${base}/results`, `results-${examId}.json`)}
    ${downloadButton(w.xlsx, `${base}/results.xlsx`, `results-${examId}.xlsx`)}
    <a href="#/exam/${esc(examId)}/audit">${esc(w.audit)}</a></p></section>`;
}

// ---------- actions ----------

type Action = 'prepare' | 'start' | 'end-exam' | 'extend' | 'reset' | 'grade' | 'revoke' | 'restore' | 'end' | 'regrade' | 'token';

const isOperator = () => session?.role === 'operator';

function examActions(exam: ExamSummary): string {
  if (!isOperator()) return '';
  const b = (action: Action, label: string, danger = false) =>
    `<button type="button" class="${danger ? 'danger' : ''}" data-action="${action}" data-exam="${esc(exam.id)}">${esc(label)}</button>`;
  return [
    exam.status === 'scheduled' ? `<a class="button-link" href="#/exam/${esc(exam.id)}/roster">${esc(w.replaceRoster)}</a>` : '',
    exam.status === 'scheduled' ? b('prepare', w.prepare) : '',
    exam.status === 'scheduled' || exam.status === 'preparing' ? b('start', w.start) : '',
    exam.status !== 'ended' && exam.status !== 'ending' ? b('end-exam', w.endExam, true) : '',
  ].join(' ');
}

function candidateActions(examId: string, c: CandidateSummary): string {
  if (!isOperator()) return '';
  const b = (action: Action, label: string, danger = false) =>
    `<button type="button" class="small${danger ? ' danger' : ''}" data-action="${action}" data-exam="${esc(examId)}" data-candidate="${esc(c.id)}" data-name="${esc(c.name)}">${esc(label)}</button>`;
  const open = !['ending', 'ended'].includes(c.phase);
  return [
    open ? b('extend', w.extend) : '',
    c.phase === 'active' ? b('grade', w.gradeNow) : '',
    c.phase === 'active' || c.phase === 'failed' ? b('reset', w.reset, true) : '',
    c.phase === 'active' && !c.revoked ? b('revoke', w.revoke, true) : '',
    c.revoked && open ? b('restore', w.restore) : '',
    open ? b('end', w.end, true) : '',
    open ? b('token', w.newToken) : '',
    c.phase === 'ended' && c.lab ? b('regrade', w.regrade) : '',
  ].join(' ');
}

async function act(action: Action, examId: string, candidateId?: string, name = ''): Promise<void> {
  const labels: Record<Action, string> = {
    prepare: w.prepare,
    start: w.start,
    'end-exam': w.endExam,
    extend: w.extend,
    reset: w.reset,
    grade: w.gradeNow,
    revoke: w.revoke,
    restore: w.restore,
    end: w.end,
    regrade: w.regrade,
    token: w.newToken,
  };
  const questions: Partial<Record<Action, string>> = {
    prepare: w.confirmPrepare,
    start: w.confirmStart,
    'end-exam': w.confirmEndExam,
    reset: w.confirmReset,
    revoke: w.confirmRevoke,
    end: w.confirmEnd,
    regrade: w.confirmRegrade,
    grade: w.confirmGrade,
    token: w.confirmToken,
  };
  let body: unknown;
  if (action === 'extend') {
    const minutes = await ask(fill(w.extendAsk, { name }), 15);
    if (typeof minutes !== 'number') return;
    body = { duration: `${minutes}m` };
  } else if (questions[action] && (await ask(fill(questions[action] as string, { name }))) !== true) {
    return;
  }
  const path = candidateId
    ? `/api/exams/${examId}/candidates/${enc(candidateId)}/${action}`
    : `/api/exams/${examId}/${action === 'end-exam' ? 'end' : action}`;
  notice(w.working);
  try {
    const answer = await api<{ score?: CandidateResult['total']; token?: string; ssh?: string }>('POST', path, body);
    if (action === 'token' && answer.token) return notice(fill(w.tokenIssued, { name, token: answer.token, ssh: answer.ssh ?? '' }));
    const what = `${labels[action]}${name ? ` (${name})` : ''}`;
    notice(fill(w.done, { what }) + (answer?.score ? ` ${w.score}${colon()} ${score(answer.score)}` : ''));
    if (action === 'grade' || action === 'regrade') await refreshCandidate?.();
  } catch (err) {
    showError(err);
  }
}

// ---------- views ----------

async function viewSignIn(message?: string): Promise<void> {
  $('who').textContent = '';
  $('signout').hidden = true;
  main().innerHTML = `<section class="signin"><h2>${esc(w.signInTitle)}</h2>
    <p>${esc(w.signInHelp)} <a href="candidate.html">${esc(w.candidatePage)}</a></p>
    <form id="signin-form"><label>${esc(w.token)} <input id="token" type="password" autocomplete="off" required></label>
    <button type="submit">${esc(w.signIn)}</button></form></section>`;
  if (message) showError(new Error(message));
  $('token').focus();
  $('signin-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const token = $<HTMLInputElement>('token').value.trim();
    if (!token) return;
    try {
      const s = await signIn(token);
      if (s.role === 'candidate') {
        await signOut();
        return showError(new Error(w.candidateToken));
      }
      clearMessages();
      session = s;
      await route();
    } catch (err) {
      showError(err);
    }
  });
}

async function viewExams(): Promise<void> {
  const { exams } = await api<{ exams: ExamSummary[] }>('GET', '/api/exams');
  document.title = w.appTitle;
  $('crumbs').innerHTML = esc(w.exams);
  main().innerHTML = (isOperator() ? `<p><a id="new-exam-link" class="button" href="#/new">${esc(w.newExam)}</a></p>` : '') + (exams.length
    ? `<table class="exams"><thead><tr><th>${esc(w.exam)}</th><th>${esc(w.status)}</th><th>${esc(w.scenario)}</th><th>${esc(w.candidates)}</th><th>${esc(w.progress)}</th><th>${esc(w.started)}</th><th>${esc(w.actions)}</th></tr></thead><tbody>
      ${[...exams]
        .reverse()
        .map(
          (e) => `<tr><td><a href="#/exam/${esc(e.id)}">${esc(e.title)}</a> <span class="muted">${esc(e.id)}</span></td>
          <td>${esc(statusWord(e.status))}</td><td>${esc(e.scenario.id)}</td><td>${e.progress.total}</td>
          <td>${e.progress.ready}/${e.progress.total} ${esc(w.labsOffered)}${e.progress.failed ? `, <span class="bad">${e.progress.failed} ${esc(w.failed)}</span>` : ''}
            <span class="muted">${Object.entries(e.progress.byPhase).filter(([, n]) => n).map(([p, n]) => `${esc(phaseWord(p))} ${n}`).join(' · ')}</span></td>
          <td>${esc(when(e.startedAt, e.timeZone, { dateStyle: 'short', timeStyle: 'short' }))}</td><td>${examActions(e)}</td></tr>`,
        )
        .join('')}</tbody></table>`
    : `<p>${esc(w.noExams)}</p>`);
}

async function viewRosterReplace(examId: string): Promise<void> {
  const exam = await api<ExamSummary>('GET', `/api/exams/${examId}`);
  document.title = `${w.replaceRoster} · ${exam.title}`;
  $('crumbs').innerHTML = `<a href="#/">${esc(w.allExams)}</a> › <a href="#/exam/${esc(exam.id)}">${esc(exam.title)}</a> › ${esc(w.replaceRoster)}`;
  await showRosterReplace({ main: main(), w, language, showError, clearMessages }, exam);
}

async function viewNewExam(): Promise<void> {
  document.title = `${w.newExam} · ${w.appTitle}`;
  $('crumbs').innerHTML = `<a href="#/">${esc(w.allExams)}</a> › ${esc(w.newExam)}`;
  await showNewExam({ main: main(), w, language, showError, clearMessages });
}

let scoresKey = '';
let scores = new Map<string, CandidateResult>();

async function viewRoom(examId: string): Promise<void> {
  let exam: ExamSummary | undefined;
  scoresKey = '';
  scores = new Map();
  main().innerHTML = `<div id="room-head"></div><div id="room-progress" class="progress"></div>
    <table class="room"><thead id="room-columns"></thead><tbody id="room-rows"></tbody></table><p id="room-foot" class="muted small"></p>
    ${examDownloads(examId)}`;
  const render = () => {
    if (!exam) return;
    const e = exam;
    document.title = `${e.title} · ${w.room}`;
    $('crumbs').innerHTML = `<a href="#/">${esc(w.allExams)}</a> › ${esc(e.title)}`;
    $('room-head').innerHTML = `<h2>${esc(e.title)} <span class="status status-${esc(e.status)}">${esc(statusWord(e.status))}</span> <span id="live" class="live"></span></h2>
      <p class="muted">${esc(e.id)} · ${esc(w.scenario)} ${esc(e.scenario.id)} · ${esc(e.timeZone)}${e.startedAt ? ` · ${esc(w.started)} ${esc(when(e.startedAt, e.timeZone))}` : ''}</p>
      <p>${examActions(e)}</p>`;
    const p = e.progress;
    const list = (o: Record<string, number>, word: (k: string) => string) =>
      Object.entries(o).filter(([, n]) => n).map(([k, n]) => `<span class="chip" data-key="${esc(k)}">${esc(word(k))} <b>${n}</b></span>`).join(' ') || '—';
    $('room-progress').innerHTML = `<div><b>${p.ready}/${p.total}</b> ${esc(w.labsOffered)}${p.failed ? `, <span class="bad">${p.failed} ${esc(w.failed)}</span>` : ''}</div>
      <div>${esc(w.phases)}${colon()} ${list(p.byPhase, phaseWord)}</div>
      <div>${esc(w.labsByState)}${colon()} ${list(p.labs, labWord)}</div>
      ${p.spares.wanted || p.spares.ready || p.spares.building ? `<div>${esc(w.spares)}${colon()} ${esc(fill(w.sparesLine, p.spares))}</div>` : ''}`;
    // Sessions and last activity: shown when the daemon reports them.
    const sessions = e.candidates.some((c) => c.connected !== undefined || c.lastActivityAt !== undefined);
    const actions = isOperator();
    $('room-columns').innerHTML = `<tr><th>${esc(w.candidate)}</th><th>${esc(w.phase)}</th><th>${esc(w.lab)}</th><th>${esc(w.timeLeft)}</th><th>${esc(w.endsAt)}</th>
      ${sessions ? `<th>${esc(w.connected)}</th><th>${esc(w.lastActivity)}</th>` : ''}<th>${esc(w.score)}</th>${actions ? `<th>${esc(w.actions)}</th>` : ''}</tr>`;
    $('room-foot').textContent = [...scores.values()].some((r) => r.runId && !r.complete) ? w.incompleteNote : '';
    $('room-rows').innerHTML = e.candidates
      .map((c) => {
        const r = scores.get(c.id);
        return `<tr data-candidate="${esc(c.id)}" data-phase="${esc(c.phase)}">
        <td><a href="#/exam/${esc(e.id)}/candidate/${enc(c.id)}">${esc(c.name)}</a> <span class="muted">${esc(c.id)}</span></td>
        <td class="phase"><span class="phase-${esc(c.phase)}">${esc(phaseWord(c.phase))}</span>${c.revoked ? ` <span class="bad">${esc(w.revoked)}</span>` : ''}${c.detail ? `<div class="muted small">${esc(c.detail)}</div>` : ''}</td>
        <td>${esc(labWord(c.lab?.state))}</td>
        <td>${timeLeftCell(c)}</td>
        <td>${esc(when(c.deadline, e.timeZone, { timeStyle: 'medium' }))}</td>
        ${sessions ? `<td class="connected">${c.connected === undefined ? '' : c.connected > 0 ? `<span class="good">${esc(w.yes)}</span> (${c.connected})` : esc(w.no)}</td>
        <td>${esc(when(c.lastActivityAt, e.timeZone, { timeStyle: 'medium' }))}</td>` : ''}
        <td class="score">${r?.runId ? `${esc(score(r.total))}${r.complete ? ' ' : ' * '}${r.total.passed ? `<span class="good">${esc(w.passed)}</span>` : `<span class="bad">${esc(w.notPassed)}</span>`}` : ''}</td>
        ${actions ? `<td>${candidateActions(e.id, c)}</td>` : ''}</tr>`;
      })
      .join('');
    setLive(liveOpen);
  };
  let liveOpen = false;
  const setLive = (open: boolean) => {
    liveOpen = open;
    const el = document.getElementById('live');
    if (el) {
      el.textContent = open ? `● ${w.live}` : w.reconnecting;
      el.className = open ? 'live on' : 'live';
    }
  };
  const loadScores = async (e: ExamSummary) => {
    const key = e.candidates.map((c) => `${c.id}:${c.phase}:${c.finalRunId ?? ''}`).join(',');
    if (key === scoresKey || !e.candidates.some((c) => c.finalRunId)) return;
    scoresKey = key;
    try {
      const results = await api<{ candidates: CandidateResult[] }>('GET', `/api/exams/${e.id}/results`);
      scores = new Map(results.candidates.map((r) => [r.candidate.id, r]));
      render();
    } catch (err) {
      scoresKey = '';
      showError(err);
    }
  };
  const stop = openEventStream(`/api/exams/${examId}/events`, {
    event(name, data) {
      if (name !== 'summary') return;
      exam = JSON.parse(data) as ExamSummary;
      syncClock(exam);
      render();
      void loadScores(exam);
    },
    state(open, status) {
      setLive(open);
      if (!open && status && status >= 400) showError(new ApiError(status, `GET /api/exams/${examId}/events`));
    },
  });
  teardown.push(stop);
}

let refreshCandidate: (() => Promise<void>) | undefined;

async function viewCandidate(examId: string, candidateId: string): Promise<void> {
  const base = `/api/exams/${examId}/candidates/${enc(candidateId)}`;
  const [exam, results] = await Promise.all([
    api<ExamSummary>('GET', `/api/exams/${examId}`),
    api<{ scenario: { manualCriteria: Criterion[]; faultPools?: FaultPool[] } }>('GET', `/api/exams/${examId}/results`),
  ]);
  const criteria = results.scenario.manualCriteria;
  const pools = results.scenario.faultPools ?? [];
  // Which variant of each fault pool the candidate faced: the jury compares like with like.
  const drawn = (faults: Record<string, string> = {}) =>
    pools
      .map((p) => ({ pool: p, option: p.options.find((o) => o.id === faults[p.id]) }))
      .filter((d) => d.option)
      .map((d) => `${esc(d.pool.title)}${colon()} <strong>${esc(d.option?.title)}</strong>`)
      .join(' · ');
  main().innerHTML = `<div id="cand-head"></div>
    <div class="columns"><div class="col">
      <section><h2>${esc(w.checks)}</h2><div id="cand-checks"></div></section>
      <section><h2>${esc(w.interventionReport)}</h2><div id="cand-report"></div></section>
    </div><div class="col">
      <section><h2>${esc(w.manualCriteria)}</h2><form id="marks"></form></section>
      <section><h2>${esc(w.recordings)}</h2><div id="recordings"></div><div id="player"></div></section>
      <section><h2>${esc(w.history)}</h2><div id="cand-history"></div></section>
    </div></div>`;
  document.title = `${candidateId} · ${exam.title}`;

  let lastKey = '';
  const load = async () => {
    const [detail, result] = await Promise.all([
      api<CandidateSummary & { labEvents: { at: string; from?: string; to: string; detail?: string }[]; runs: { id: string; purpose: string; status: string; startedAt: string; finishedAt?: string; score?: { points: number; maxPoints: number; percent: number } }[] }>('GET', base),
      api<CandidateResult>('GET', `${base}/result`),
    ]);
    $('crumbs').innerHTML = `<a href="#/">${esc(w.allExams)}</a> › <a href="#/exam/${esc(examId)}">${esc(exam.title)}</a> › ${esc(detail.name)}`;
    $('cand-head').innerHTML = `<h2>${esc(detail.name)} <span class="muted">${esc(detail.id)}</span> <span class="phase-${esc(detail.phase)}">${esc(phaseWord(detail.phase))}</span>${detail.revoked ? ` <span class="bad">${esc(w.revoked)}</span>` : ''}</h2>
      <p>${esc(w.lab)}${colon()} ${esc(labWord(detail.lab?.state) || '—')} · ${esc(w.endsAt)}${colon()} ${esc(when(detail.deadline, exam.timeZone)) || '—'}${detail.deadline && ['active', 'provisioning'].includes(detail.phase) ? ` · ${esc(w.timeLeft)}${colon()} ${timeLeftCell(detail)}` : ''}
      ${detail.connected !== undefined ? ` · ${esc(w.connected)}${colon()} ${detail.connected > 0 ? `${esc(w.yes)} (${detail.connected})` : esc(w.no)}` : ''}${detail.lastActivityAt ? ` · ${esc(w.lastActivity)}${colon()} ${esc(when(detail.lastActivityAt, exam.timeZone))}` : ''}</p>
      <p class="total">${esc(w.total)}${colon()} <strong id="total">${esc(score(result.total))}</strong> — ${esc(w.auto)} ${result.auto.points}/${result.auto.maxPoints}, ${esc(w.manual)} <span id="manual-points">${result.manual.points}/${result.manual.maxPoints}</span> ·
        ${result.total.passed ? `<span class="good">${esc(w.passed)}</span>` : `<span class="bad">${esc(w.notPassed)}</span>`}
        ${result.complete ? `· ${esc(w.complete)}` : `<span class="muted">· ${esc(w.pending)}${colon()} ${esc(pendingWords(result).join(' ; '))}</span>`}</p>
      ${drawn(result.faults) ? `<p id="faults-drawn">${esc(w.faultsDrawn)}${colon()} ${drawn(result.faults)}</p>` : ''}
      <p>${candidateActions(examId, detail)} ${downloadButton(w.report, `${base}/report.html`, `rapport-${candidateId}.html`)}</p>`;
    $('cand-checks').innerHTML = result.runId
      ? `<table class="checks"><thead><tr><th>${esc(w.check)}</th><th>${esc(w.status)}</th><th>${esc(w.points)}</th><th>${esc(w.expected)}</th><th>${esc(w.actual)}</th></tr></thead><tbody>
        ${result.checks
          .map(
            (c) => `<tr class="check-${esc(c.status)}"><td>${esc(c.title)} <span class="muted">${esc(c.id)} · ${esc(c.machine)}</span>
            ${c.evidence || c.message ? `<details><summary>${esc(w.evidence)}</summary><pre>${esc([c.message, c.evidence].filter(Boolean).join('\n'))}</pre></details>` : ''}</td>
            <td>${esc(checkWord(c.status))}</td><td>${c.points}/${c.maxPoints}</td><td><code>${esc(c.expected)}</code></td><td><code>${esc(c.actual)}</code></td></tr>`,
          )
          .join('')}</tbody></table><p class="muted">${esc(when(result.gradedAt, exam.timeZone))}</p>`
      : `<p class="muted">${esc(w.notGraded)}</p>`;
    const r = result.report;
    $('cand-report').innerHTML = r
      ? `<p class="muted">${esc(fill(w.revision, { n: r.revision, at: when(r.updatedAt ?? r.submittedAt, exam.timeZone) }))}</p>
        <h3>${esc(w.diagnosis)}</h3><p class="pre">${esc(r.diagnosis)}</p><h3>${esc(w.reportActions)}</h3><p class="pre">${esc(r.actions)}</p><h3>${esc(w.result)}</h3><p class="pre">${esc(r.result)}</p>`
      : `<p class="muted">${esc(w.noReport)}</p>`;
    $('cand-history').innerHTML = `<table class="small"><tbody>${detail.labEvents
      .map((e) => `<tr><td>${esc(when(e.at, exam.timeZone))}</td><td>${esc(e.from ?? '')} → ${esc(e.to)}</td><td class="muted">${esc(e.detail ?? '')}</td></tr>`)
      .join('')}</tbody></table>
      <h3>${esc(w.runs)}</h3><table class="small"><tbody>${detail.runs
        .map((run) => `<tr><td>${esc(when(run.startedAt, exam.timeZone))}</td><td>${esc(run.purpose)}</td><td>${esc(run.status)}</td><td>${run.score ? `${run.score.points}/${run.score.maxPoints}` : ''}</td></tr>`)
        .join('')}</tbody></table>`;
    return result;
  };
  const renderMarks = (result: CandidateResult) => {
    $('marks').innerHTML = criteria
      .map((c) => {
        const mark = result.manualCriteria.find((m) => m.id === c.id);
        return `<fieldset data-criterion="${esc(c.id)}"><legend>${esc(c.title)}</legend>
        ${c.description ? `<p class="muted small">${esc(c.description)}</p>` : ''}
        ${c.levels
          .map(
            (l) => `<label class="level"><input type="radio" name="level-${esc(c.id)}" value="${esc(l.id)}"${mark?.level === l.id ? ' checked' : ''}> ${esc(l.title)} <b>${l.points} pt</b></label>`,
          )
          .join('')}
        <label>${esc(w.comment)}<textarea name="comment-${esc(c.id)}" rows="2" maxlength="4000">${esc(mark?.comment ?? '')}</textarea></label>
        <p><button type="button" data-mark="${esc(c.id)}">${esc(w.saveMark)}</button>
        <span class="muted small mark-state">${mark?.status === 'marked' ? esc(fill(w.markedBy, { who: actorName(mark.markedBy), at: when(mark.markedAt, exam.timeZone) })) : esc(w.unmarked)}</span></p></fieldset>`;
      })
      .join('');
  };
  const first = await load();
  renderMarks(first);
  refreshCandidate = async () => {
    await load();
  };
  $('marks').addEventListener('click', async (e) => {
    const button = (e.target as HTMLElement).closest<HTMLButtonElement>('[data-mark]');
    if (!button) return;
    const id = button.dataset.mark as string;
    const form = $<HTMLFormElement>('marks');
    const level = form.querySelector<HTMLInputElement>(`input[name="level-${CSS.escape(id)}"]:checked`)?.value;
    const comment = form.querySelector<HTMLTextAreaElement>(`textarea[name="comment-${CSS.escape(id)}"]`)?.value ?? '';
    if (!level) return showError(new Error(`${w.level} ?`));
    try {
      await api('PUT', `${base}/marks/${enc(id)}`, comment.trim() ? { level, comment } : { level });
      const result = await load();
      renderMarks(result);
      notice(fill(w.done, { what: `${w.saveMark} — ${w.total} ${score(result.total)}` }));
    } catch (err) {
      showError(err);
    }
  });
  await loadRecordings(base, exam.timeZone);
  // The candidate's state follows the room's event stream: reload when their entry changes.
  const stop = openEventStream(`/api/exams/${examId}/events`, {
    event(name, data) {
      if (name !== 'summary') return;
      const summary = JSON.parse(data) as ExamSummary;
      syncClock(summary);
      const c = summary.candidates.find((x) => x.id === candidateId);
      const key = JSON.stringify(c, (k, v: unknown) => (k === 'remainingSeconds' ? undefined : v));
      if (lastKey && key !== lastKey) void load().catch(showError);
      lastKey = key;
    },
  });
  teardown.push(stop, () => (refreshCandidate = undefined));
}

async function loadRecordings(base: string, timeZone: string): Promise<void> {
  const box = $('recordings');
  let recordings: Recording[];
  try {
    recordings = (await api<{ recordings: Recording[] }>('GET', `${base}/recordings`)).recordings;
  } catch (err) {
    box.innerHTML = `<p class="muted">${esc(err instanceof ApiError && err.status === 404 ? w.recordingsUnavailable : plain(err))}</p>`;
    return;
  }
  box.innerHTML = recordings.length
    ? `<table class="small"><thead><tr><th>${esc(w.machine)}</th><th>${esc(w.via)}</th><th>${esc(w.startedAt)}</th><th>${esc(w.endedAt)}</th><th>${esc(w.size)}</th><th></th></tr></thead><tbody>
      ${recordings
        .map(
          (r) => `<tr><td>${esc(r.machine)}</td><td>${esc(r.via)}</td><td>${esc(when(r.startedAt, timeZone))}</td><td>${r.live ? `<span class="good">${esc(w.live)}</span>` : esc(when(r.endedAt, timeZone))}</td><td>${Math.ceil(r.bytes / 1024)} KiB</td>
          <td><button type="button" class="small" data-replay="${esc(r.id)}">${esc(w.replay)}</button>${r.live ? ` <button type="button" class="small" data-watch="${esc(r.id)}">${esc(w.watchLive)}</button>` : ''}</td></tr>`,
        )
        .join('')}</tbody></table>`
    : `<p class="muted">${esc(w.noRecordings)}</p>`;
  let stopPlayer: (() => void) | undefined;
  teardown.push(() => stopPlayer?.());
  box.addEventListener('click', (e) => {
    const target = e.target as HTMLElement;
    const replay = target.closest<HTMLElement>('[data-replay]')?.dataset.replay;
    const watch = target.closest<HTMLElement>('[data-watch]')?.dataset.watch;
    if (!replay && !watch) return;
    stopPlayer?.();
    const el = $('player');
    el.innerHTML = '';
    if (replay) stopPlayer = replayRecording(el, `${base}/recordings/${enc(replay)}.cast`);
    if (watch) stopPlayer = watchLive(el, `${base}/recordings/${enc(watch)}/live`);
  });
}

/** Replays a recording (asciicast v2) with asciinema-player, fetched with the page's credentials. */
function replayRecording(el: HTMLElement, castPath: string): () => void {
  const player = AsciinemaPlayer.create(
    {
      data: async () => {
        const res = await apiFetch(castPath);
        if (!res.ok) throw new ApiError(res.status, `${castPath}: ${res.statusText}`);
        return res.text();
      },
    },
    el,
    { fit: 'width', autoPlay: true, idleTimeLimit: 2 },
  );
  return () => player.dispose();
}

/** Watches a live session read-only: the recording's events as they come, in a terminal that takes no input. */
function watchLive(el: HTMLElement, livePath: string): () => void {
  const term = new Terminal({ disableStdin: true, cursorBlink: false, convertEol: false, fontSize: 13, scrollback: 5000 });
  term.open(el);
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${livePath}`);
  const status = document.createElement('p');
  status.className = 'muted small';
  el.append(status);
  ws.onmessage = (m) => {
    if (typeof m.data !== 'string') return;
    const msg = JSON.parse(m.data) as { type: string; width?: number; height?: number; event?: [number, string, string] };
    if (msg.type === 'header' && msg.width && msg.height) term.resize(msg.width, msg.height);
    else if (msg.type === 'event' && msg.event) {
      const [, code, data] = msg.event;
      if (code === 'o') term.write(data);
      else if (code === 'r') {
        const [cols, rows] = data.split('x').map(Number);
        if (cols && rows) term.resize(cols, rows);
      }
    } else if (msg.type === 'closed') status.textContent = w.liveEnded;
  };
  ws.onerror = () => (status.textContent = w.liveFailed);
  return () => {
    ws.close();
    term.dispose();
  };
}

async function viewAudit(examId: string): Promise<void> {
  const [exam, audit] = await Promise.all([
    api<ExamSummary>('GET', `/api/exams/${examId}`),
    api<{ records: { seq: number; at: string; actor: string; action: string; candidateId?: string; labId?: string; detail: unknown }[]; chain: { ok: boolean; checked: number; brokenAt?: number; problem?: string; anchor?: { text: string } } }>('GET', `/api/audit?exam=${examId}`),
  ]);
  document.title = `${w.audit} · ${exam.title}`;
  $('crumbs').innerHTML = `<a href="#/">${esc(w.allExams)}</a> › <a href="#/exam/${esc(examId)}">${esc(exam.title)}</a> › ${esc(w.audit)}`;
  const chain = audit.chain;
  main().innerHTML = `<h2>${esc(w.audit)}</h2>
    <p id="chain" class="${chain.ok ? 'good' : 'bad'}">${esc(chain.ok ? fill(w.auditChainOk, { n: chain.checked }) : fill(w.auditChainBroken, { seq: chain.brokenAt ?? '?', problem: chain.problem ?? '' }))}${chain.anchor ? ` ${esc(fill(w.auditAnchor, { anchor: chain.anchor.text }))}` : ''}</p>
    <p>${downloadButton('JSON', `/api/audit?exam=${examId}`, `audit-${examId}.json`)}</p>
    <table class="small audit"><thead><tr><th>#</th><th>${esc(w.when)}</th><th>${esc(w.who)}</th><th>${esc(w.what)}</th><th>${esc(w.candidate)}</th><th>${esc(w.detail)}</th></tr></thead><tbody>
    ${audit.records
      .map(
        (r) => `<tr><td>${r.seq}</td><td>${esc(when(r.at, exam.timeZone))}</td><td>${esc(r.actor)}</td><td>${esc(r.action)}</td><td>${esc(r.candidateId ?? '')}</td>
        <td><code>${esc(r.detail && Object.keys(r.detail).length ? JSON.stringify(r.detail) : '')}</code></td></tr>`,
      )
      .join('')}</tbody></table>`;
}

// ---------- the page ----------

function chrome(): void {
  document.documentElement.lang = language;
  $('app-title').textContent = w.appTitle;
  $('lang').textContent = w.language;
  $('signout').textContent = w.signOut;
  $('who').textContent = session ? `${session.name ? `${session.name} · ` : ''}${session.role === 'operator' ? w.operator : w.jury}` : '';
  $('signout').hidden = !session;
}

async function route(): Promise<void> {
  for (const stop of teardown.splice(0)) stop();
  chrome();
  if (!session) return viewSignIn();
  $('crumbs').innerHTML = '';
  main().innerHTML = '';
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  try {
    if (parts[0] === 'exam' && parts[1] && parts[2] === 'candidate' && parts[3]) await viewCandidate(parts[1], parts[3]);
    else if (parts[0] === 'exam' && parts[1] && parts[2] === 'audit') await viewAudit(parts[1]);
    else if (parts[0] === 'exam' && parts[1] && parts[2] === 'roster' && isOperator()) await viewRosterReplace(parts[1]);
    else if (parts[0] === 'exam' && parts[1]) await viewRoom(parts[1]);
    else if (parts[0] === 'new' && isOperator()) await viewNewExam();
    else await viewExams();
  } catch (err) {
    showError(err);
  }
}

async function start(): Promise<void> {
  try {
    session = await currentSession();
  } catch (err) {
    session = undefined;
    showError(err);
  }
  await route();
}

document.addEventListener('click', (e) => {
  const target = e.target as HTMLElement;
  const action = target.closest<HTMLElement>('[data-action]');
  if (action) {
    const { action: name, exam, candidate, name: who } = action.dataset;
    void act(name as Action, exam as string, candidate, who).then(() => (location.hash.startsWith('#/exam/') ? undefined : route()));
    return;
  }
  const dl = target.closest<HTMLElement>('[data-download]');
  if (dl) void download(dl.dataset.download as string, dl.dataset.filename as string);
});
window.addEventListener('hashchange', () => {
  clearMessages();
  void route();
});
$('lang').addEventListener('click', () => {
  language = language === 'fr' ? 'en' : 'fr';
  chooseLanguage(language);
  w = staffWords(language);
  void route();
});
$('signout').addEventListener('click', async () => {
  await signOut().catch(showError);
  session = undefined;
  location.hash = '';
  await route();
});
setInterval(tickCountdowns, 1000);
void start();
