// The candidate's page: sign in with the token on the exam card (then the
// HttpOnly cookie only), the time left by the daemon's clock, the
// instructions, the intervention report saved as it is typed, the practice
// self-check, and one terminal per machine they may log in to.
import MarkdownIt from 'markdown-it';
import { api, ApiError } from './lib/api.js';
import { chooseLanguage, pageLanguage, words, type Language } from './lib/i18n.js';
import { LabTerminal, type TerminalState } from './lib/terminal.js';

const TEXT = {
  fr: {
    pageTitle: 'examlab – épreuve pratique',
    signinTitle: 'Épreuve pratique',
    signinHelp: "Saisissez le jeton d'accès imprimé sur votre convocation. Les tirets et les majuscules sont facultatifs.",
    tokenLabel: "Jeton d'accès",
    signinButton: 'Commencer',
    signingIn: 'Vérification…',
    badToken: 'Jeton inconnu : vérifiez-le sur votre convocation (0 et O, 1 et I ne se confondent pas ici).',
    notStarted: "L'épreuve n'a pas encore commencé : attendez le signal du surveillant, puis réessayez.",
    examOverSignin: 'Votre épreuve est terminée : ce jeton ne donne plus accès.',
    revokedSignin: 'Votre accès a été suspendu : adressez-vous au surveillant.',
    tooMany: 'Trop de tentatives depuis ce poste : attendez une minute avant de réessayer.',
    staffToken: "Ce jeton est celui d'un membre du jury ou de l'organisation : la page du personnel est à l'adresse /.",
    network: 'Le serveur ne répond pas : vérifiez le réseau ou prévenez le surveillant.',
    candidateLabel: 'Candidat :',
    timeLeft: 'Temps restant',
    clockOver: 'terminé',
    endsAt: 'fin à {time}',
    signOut: 'Quitter',
    signOutConfirm: "Quitter la page ? Votre environnement et votre compte rendu sont conservés ; il faudra ressaisir votre jeton.",
    recordedNotice: 'Vos sessions de terminal sont enregistrées (affichage et frappes) et peuvent être suivies en direct par le jury.',
    tabInstructions: 'Consignes',
    tabReport: "Compte rendu",
    tabSelfCheck: 'Auto-vérification',
    tabAccess: 'Accès',
    onlyIn: 'Ces consignes existent seulement en {lang}.',
    noInstructions: "Les consignes s'afficheront dès que votre environnement sera prêt.",
    reportHelp: "Rédigez votre compte rendu d'intervention au fil de l'épreuve : il est enregistré automatiquement. Après la fin de l'épreuve, il ne peut plus être modifié.",
    diagnosis: 'Diagnostic : ce qui ne fonctionnait pas, et comment vous l’avez trouvé',
    actions: 'Actions menées',
    result: 'Résultat : ce qui fonctionne maintenant, ce qui reste à faire',
    unsaved: 'Modifications en cours…',
    saving: 'Enregistrement…',
    savedAt: 'Enregistré à {time}',
    saveFailed: "Échec de l'enregistrement : {message}. Nouvel essai à la prochaine frappe.",
    reportClosed: "L'épreuve est terminée : votre compte rendu est figé tel qu'enregistré.",
    selfCheckHelp: "Épreuve d'entraînement : vérifiez où vous en êtes. Chaque vérification prend jusqu'à une minute.",
    selfCheckButton: 'Vérifier mon travail',
    selfChecking: 'Vérification en cours…',
    score: 'Score : {points} / {max} ({percent} %)',
    pass: 'réussi',
    fail: 'échoué',
    other: 'non vérifié',
    sudoTitle: 'Mot de passe administrateur',
    sudoHelp: 'Pour les commandes sudo :',
    machinesTitle: 'Vos machines',
    machineLine: '{hostname} – compte {user}',
    sshHelp: "Chaque onglet de terminal ouvre une session sur la machine. Copier : Ctrl+Maj+C (ou Ctrl+C sur une sélection) ; coller : Ctrl+V.",
    waiting: "L'épreuve n'a pas encore commencé.",
    provisioning: 'Votre environnement est en préparation : le terminal s’ouvrira dès qu’il sera prêt.',
    ready: "Votre environnement est prêt : l'accès ouvrira au début de l'épreuve.",
    failed: "Votre environnement n'a pas pu être préparé : prévenez le surveillant.",
    connecting: 'Connexion à {machine}…',
    connected: 'Connecté à {machine} (compte {user}) · mot de passe sudo : {sudo}',
    reconnecting: 'Connexion perdue : reconnexion à {machine}… (essai {attempt}). Votre session est conservée.',
    lost: 'Connexion à {machine} impossible. Vérifiez le réseau, puis réessayez.',
    retry: 'Réessayer',
    reopen: 'Ouvrir une nouvelle session',
    sessionEnded: 'La session sur {machine} est terminée.',
    resetting: 'Votre environnement est réinitialisé à la demande du surveillant : rouvrez la session dans une minute.',
    unreachable: 'La machine {machine} ne répond pas : prévenez le surveillant.',
    timeUp: "Temps écoulé : l'épreuve est terminée. Les terminaux sont fermés et votre compte rendu est enregistré.",
    examEnded: "L'épreuve est terminée. Les terminaux sont fermés et votre compte rendu est enregistré.",
    revoked: 'Votre accès a été suspendu par le surveillant. Adressez-vous à lui.',
    french: 'français',
    english: 'anglais',
  },
  en: {
    pageTitle: 'examlab – practical exam',
    signinTitle: 'Practical exam',
    signinHelp: 'Type the access token printed on your exam card. Dashes and capitals are optional.',
    tokenLabel: 'Access token',
    signinButton: 'Start',
    signingIn: 'Checking…',
    badToken: 'Unknown token: check it on your exam card.',
    notStarted: 'The exam has not started yet: wait for the supervisor, then try again.',
    examOverSignin: 'Your exam is over: this token no longer opens it.',
    revokedSignin: 'Your access has been suspended: see the supervisor.',
    tooMany: 'Too many attempts from this computer: wait a minute before trying again.',
    staffToken: 'This is a jury or staff token: the staff page is at /.',
    network: 'The server does not answer: check the network or tell the supervisor.',
    candidateLabel: 'Candidate:',
    timeLeft: 'Time left',
    clockOver: 'over',
    endsAt: 'ends at {time}',
    signOut: 'Leave',
    signOutConfirm: 'Leave this page? Your lab and your report are kept; you will have to type your token again.',
    recordedNotice: 'Your terminal sessions are recorded (screen and keystrokes) and the jury may watch them live.',
    tabInstructions: 'Instructions',
    tabReport: 'Report',
    tabSelfCheck: 'Self-check',
    tabAccess: 'Access',
    onlyIn: 'These instructions exist only in {lang}.',
    noInstructions: 'The instructions appear as soon as your lab is ready.',
    reportHelp: 'Write your intervention report as you go: it is saved automatically. After the end of the exam it can no longer be changed.',
    diagnosis: 'Diagnosis: what was wrong, and how you found it',
    actions: 'Actions taken',
    result: 'Result: what works now, what is left to do',
    unsaved: 'Unsaved changes…',
    saving: 'Saving…',
    savedAt: 'Saved at {time}',
    saveFailed: 'Could not save: {message}. Trying again at the next keystroke.',
    reportClosed: 'The exam is over: your report stays as it was last saved.',
    selfCheckHelp: 'Practice exam: see where you stand. Each check takes up to a minute.',
    selfCheckButton: 'Check my work',
    selfChecking: 'Checking…',
    score: 'Score: {points} / {max} ({percent} %)',
    pass: 'passed',
    fail: 'failed',
    other: 'not checked',
    sudoTitle: 'Administrator password',
    sudoHelp: 'For sudo commands:',
    machinesTitle: 'Your machines',
    machineLine: '{hostname} – account {user}',
    sshHelp: 'Each terminal tab opens a session on that machine. Copy: Ctrl+Shift+C (or Ctrl+C on a selection); paste: Ctrl+V.',
    waiting: 'The exam has not started yet.',
    provisioning: 'Your lab is being prepared: the terminal opens as soon as it is ready.',
    ready: 'Your lab is ready: access opens at the start of the exam.',
    failed: 'Your lab could not be prepared: tell the supervisor.',
    connecting: 'Connecting to {machine}…',
    connected: 'Connected to {machine} (account {user}) · sudo password: {sudo}',
    reconnecting: 'Connection lost: reconnecting to {machine}… (attempt {attempt}). Your session is kept.',
    lost: 'Cannot reach {machine}. Check the network, then try again.',
    retry: 'Try again',
    reopen: 'Open a new session',
    sessionEnded: 'The session on {machine} has ended.',
    resetting: 'Your lab is being reset by the supervisor: open the session again in a minute.',
    unreachable: 'The machine {machine} does not answer: tell the supervisor.',
    timeUp: 'Time is up: the exam is over. The terminals are closed and your report is saved.',
    examEnded: 'The exam is over. The terminals are closed and your report is saved.',
    revoked: 'Your access has been suspended by the supervisor. Please see them.',
    french: 'French',
    english: 'English',
  },
};
type Words = (typeof TEXT)['fr'];

interface Machine {
  name: string;
  hostname: string;
  user: string;
  ssh: string;
}
interface Report {
  diagnosis: string;
  actions: string;
  result: string;
  revision?: number;
  submittedAt?: string;
}
interface Me {
  exam: { id: string; title: string; mode: 'exam' | 'practice'; language: Language; timeZone: string };
  candidate: { id: string; name: string };
  phase: 'waiting' | 'provisioning' | 'ready' | 'active' | 'failed' | 'ending' | 'ended';
  status: string;
  deadline?: string;
  serverTime: string;
  access?: { machines: Machine[]; sudoPassword: string };
  instructions: string | null;
  instructionsByLanguage: Partial<Record<Language, string>>;
  report?: Report;
}
interface GradeView {
  status: string;
  score?: { points: number; maxPoints: number; percent: number; passed?: boolean };
  checks: { title: string; status: string; points: number; maxPoints: number }[];
}
type Finish = 'time-up' | 'ended' | 'revoked';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const markdown = new MarkdownIt({ html: false, linkify: false, typographer: false });

let lang: Language = pageLanguage();
let w: Words = words(TEXT, lang);
let me: Me | undefined;
/** The daemon's clock minus this PC's: the countdown follows the daemon. */
let clockOffset = 0;
let finished: Finish | undefined;
let reportLoaded = false;
let reportTimer: number | undefined;
let savingReport: Promise<void> = Promise.resolve();
let activeMachine: string | undefined;
const terminals = new Map<string, { terminal?: LabTerminal; tab: HTMLButtonElement; pane: HTMLElement; state: TerminalState }>();

const fill = (template: string, values: Record<string, string | number>) => template.replace(/\{(\w+)\}/g, (_m, k: string) => String(values[k] ?? ''));
const serverNow = () => Date.now() + clockOffset;

function setLanguage(next: Language): void {
  lang = next;
  w = words(TEXT, lang);
  document.documentElement.lang = lang;
  document.title = w.pageTitle;
  for (const el of document.querySelectorAll<HTMLElement>('[data-w]')) el.textContent = w[el.dataset.w as keyof Words] ?? '';
  for (const el of document.querySelectorAll<HTMLElement>('[data-lang]')) el.setAttribute('aria-pressed', String(el.dataset.lang === lang));
  if (me) render();
  for (const machine of terminals.keys()) showTerminalState(machine);
  if (finished) finish(finished);
}

// ---- sign-in -------------------------------------------------------------

function signInMessage(err: unknown): string {
  if (!(err instanceof ApiError)) return w.network;
  if (err.status === 429) return w.tooMany;
  if (/unknown/.test(err.message)) return w.badToken;
  if (/not started/.test(err.message)) return w.notStarted;
  if (/over/.test(err.message)) return w.examOverSignin;
  if (/revoked/.test(err.message)) return w.revokedSignin;
  if (err.status === 401) return w.badToken;
  return err.message;
}

async function signIn(event: SubmitEvent): Promise<void> {
  event.preventDefault();
  const input = $<HTMLInputElement>('token');
  const button = $<HTMLButtonElement>('signin-button');
  const token = input.value.trim();
  $('signin-error').textContent = '';
  if (!token) return void ($('signin-error').textContent = w.badToken);
  button.disabled = true;
  button.textContent = w.signingIn;
  try {
    const who = await api<{ role: string }>('POST', '/api/session', { token });
    if (who.role !== 'candidate') {
      await api('DELETE', '/api/session').catch(() => undefined);
      input.value = '';
      $('signin-error').textContent = w.staffToken;
      return;
    }
    input.value = '';
    await enterExam();
  } catch (err) {
    $('signin-error').textContent = signInMessage(err);
  } finally {
    button.disabled = false;
    button.textContent = w.signinButton;
  }
}

function showSignIn(message = ''): void {
  $('exam').hidden = true;
  $('signin').hidden = false;
  $('signin-error').textContent = message;
  $<HTMLInputElement>('token').focus();
}

// ---- the exam ------------------------------------------------------------

async function enterExam(): Promise<void> {
  await loadMe();
  if (!me) return;
  $('signin').hidden = true;
  $('exam').hidden = false;
  window.setInterval(() => void loadMe(), 15_000);
  window.setInterval(tick, 250);
  tick();
}

/** Reads the candidate's view; the round trip's midpoint sets the clock offset. */
async function loadMe(): Promise<void> {
  if (finished) return;
  const sent = Date.now();
  let next: Me;
  try {
    next = await api<Me>('GET', '/api/me');
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
      if (!me) return showSignIn(signInMessage(err));
      return finish(/revoked/.test(err.message) ? 'revoked' : serverNow() >= Date.parse(me.deadline ?? '') ? 'time-up' : 'ended');
    }
    return; // a blip: the next poll tries again
  }
  const received = Date.now();
  clockOffset = Date.parse(next.serverTime) - (sent + received) / 2;
  me = next;
  render();
  if (me.phase === 'ending' || me.phase === 'ended') finish(serverNow() >= Date.parse(me.deadline ?? '') ? 'time-up' : 'ended');
}

function render(): void {
  const m = me as Me;
  $('exam-title').textContent = m.exam.title;
  $('candidate-name').textContent = m.candidate.name;
  $('ends-at').textContent = m.deadline
    ? fill(w.endsAt, { time: new Intl.DateTimeFormat(lang === 'en' ? 'en-GB' : 'fr-FR', { timeZone: m.exam.timeZone, timeStyle: 'short', hourCycle: 'h23' }).format(Date.parse(m.deadline)) })
    : '';
  renderInstructions(m);
  $('tab-selfcheck').hidden = m.exam.mode !== 'practice';
  renderAccess(m);
  if (!reportLoaded && m.report) {
    for (const field of ['diagnosis', 'actions', 'result'] as const) $<HTMLTextAreaElement>(`report-${field}`).value = m.report[field];
    $('report-status').textContent = m.report.submittedAt ? fill(w.savedAt, { time: timeOf(m.report.submittedAt) }) : '';
  }
  reportLoaded = true;
  renderTerminals(m);
}

function renderInstructions(m: Me): void {
  const available = Object.keys(m.instructionsByLanguage) as Language[];
  const chosen: Language | undefined = m.instructionsByLanguage[lang] ? lang : m.instructionsByLanguage[m.exam.language] ? m.exam.language : available[0];
  const text = chosen ? (m.instructionsByLanguage[chosen] as string) : m.instructions;
  // html: false: whatever the scenario holds is shown as text, never run.
  $('instructions').innerHTML = text ? markdown.render(text) : `<p class="muted">${w.noInstructions}</p>`;
  const note = $('instructions-lang');
  note.hidden = !chosen || chosen === lang;
  note.textContent = chosen && chosen !== lang ? fill(w.onlyIn, { lang: chosen === 'fr' ? w.french : w.english }) : '';
}

function renderAccess(m: Me): void {
  $('sudo-password').textContent = m.access?.sudoPassword ?? '–';
  const list = $('machines');
  list.replaceChildren(
    ...(m.access?.machines ?? []).map((machine) => {
      const li = document.createElement('li');
      li.textContent = fill(w.machineLine, { hostname: machine.hostname, user: machine.user });
      const ssh = document.createElement('code');
      ssh.textContent = machine.ssh;
      li.append(document.createElement('br'), ssh);
      return li;
    }),
  );
}

const timeOf = (iso: string) => new Intl.DateTimeFormat(lang === 'en' ? 'en-GB' : 'fr-FR', { timeStyle: 'medium', hourCycle: 'h23', timeZone: me?.exam.timeZone }).format(Date.parse(iso));

function tick(): void {
  const clock = $('clock');
  if (finished) {
    $('time-left').textContent = w.clockOver;
    clock.classList.remove('soon');
    clock.classList.add('over');
    return;
  }
  if (!me?.deadline) {
    $('time-left').textContent = '–';
    return;
  }
  const left = Math.max(0, Math.floor((Date.parse(me.deadline) - serverNow()) / 1000));
  const h = Math.floor(left / 3600);
  const mm = String(Math.floor((left % 3600) / 60)).padStart(2, '0');
  const ss = String(left % 60).padStart(2, '0');
  $('time-left').textContent = `${h}:${mm}:${ss}`;
  clock.classList.toggle('soon', left > 0 && left <= 600);
  clock.classList.toggle('over', left === 0);
  if (left === 0 && me.phase === 'active' && !finished) finish('time-up');
}

/** The end, for whatever reason: a clear message, the terminals closed, the report frozen. */
function finish(reason: Finish): void {
  const first = !finished;
  finished = reason;
  const banner = $('banner');
  banner.hidden = false;
  banner.className = 'banner';
  banner.textContent = reason === 'time-up' ? w.timeUp : reason === 'revoked' ? w.revoked : w.examEnded;
  for (const field of ['diagnosis', 'actions', 'result']) $<HTMLTextAreaElement>(`report-${field}`).readOnly = true;
  if (first) void flushReport().finally(() => ($('report-status').textContent = w.reportClosed));
  else $('report-status').textContent = w.reportClosed;
  $('terminal-status').textContent = banner.textContent;
  $('terminal-status').className = 'terminal-status bad';
  for (const entry of terminals.values()) {
    entry.terminal?.term.write(`\r\n\x1b[1;31m${banner.textContent}\x1b[0m\r\n`);
    entry.tab.querySelector('.dot')?.setAttribute('class', 'dot off');
    if (entry.terminal) entry.terminal.term.options.disableStdin = true;
  }
  $<HTMLButtonElement>('selfcheck-run').disabled = true;
  tick();
}

// ---- the report ----------------------------------------------------------

function reportValue(): Report {
  const value = (field: string) => $<HTMLTextAreaElement>(`report-${field}`).value;
  return { diagnosis: value('diagnosis'), actions: value('actions'), result: value('result') };
}

function reportTyped(): void {
  if (finished) return;
  $('report-status').className = 'status';
  $('report-status').textContent = w.unsaved;
  window.clearTimeout(reportTimer);
  reportTimer = window.setTimeout(() => void saveReport(), 1200);
}

function saveReport(): Promise<void> {
  reportTimer = undefined;
  const report = reportValue();
  if (![report.diagnosis, report.actions, report.result].some((t) => t.trim())) return Promise.resolve();
  savingReport = savingReport.then(async () => {
    $('report-status').textContent = w.saving;
    try {
      const saved = await api<Report>('PUT', '/api/me/report', report);
      $('report-status').className = 'status';
      $('report-status').textContent = fill(w.savedAt, { time: timeOf(saved.submittedAt ?? new Date().toISOString()) });
    } catch (err) {
      $('report-status').className = 'status bad';
      $('report-status').textContent = fill(w.saveFailed, { message: err instanceof Error ? err.message : String(err) });
      if (err instanceof ApiError && err.status === 409) void loadMe();
    }
  });
  return savingReport;
}

/** Saves what is waiting for the debounce at once (the end has come). */
async function flushReport(): Promise<void> {
  if (reportTimer !== undefined) {
    window.clearTimeout(reportTimer);
    await saveReport();
  } else await savingReport;
}

// ---- the practice self-check --------------------------------------------

async function selfCheck(): Promise<void> {
  const button = $<HTMLButtonElement>('selfcheck-run');
  const out = $('selfcheck-result');
  button.disabled = true;
  button.textContent = w.selfChecking;
  try {
    const run = await api<GradeView>('POST', '/api/me/grade');
    const score = document.createElement('p');
    score.className = 'score';
    score.textContent = run.score ? fill(w.score, { points: run.score.points, max: run.score.maxPoints, percent: Math.round(run.score.percent) }) : run.status;
    const list = document.createElement('ul');
    list.className = 'checks';
    for (const check of run.checks) {
      const li = document.createElement('li');
      const title = document.createElement('span');
      title.textContent = `${check.title} (${check.points}/${check.maxPoints})`;
      const badge = document.createElement('span');
      const kind = check.status === 'pass' ? 'pass' : check.status === 'fail' ? 'fail' : 'other';
      badge.className = `badge ${kind}`;
      badge.textContent = w[kind];
      li.append(title, badge);
      list.append(li);
    }
    out.replaceChildren(score, list);
  } catch (err) {
    const p = document.createElement('p');
    p.className = 'error';
    p.textContent = err instanceof Error ? err.message : String(err);
    out.replaceChildren(p);
  } finally {
    button.disabled = Boolean(finished);
    button.textContent = w.selfCheckButton;
  }
}

// ---- terminals -----------------------------------------------------------

function renderTerminals(m: Me): void {
  const waiting = $('terminal-waiting');
  const machines = m.phase === 'active' ? (m.access?.machines ?? []) : [];
  if (!machines.length) {
    waiting.hidden = false;
    waiting.textContent = m.phase === 'failed' ? w.failed : m.phase === 'ready' ? w.ready : m.phase === 'provisioning' ? w.provisioning : m.phase === 'waiting' ? w.waiting : '';
    return;
  }
  waiting.hidden = true;
  for (const machine of machines) {
    if (terminals.has(machine.name)) continue;
    const tab = document.createElement('button');
    tab.type = 'button';
    tab.setAttribute('role', 'tab');
    tab.dataset.machine = machine.name;
    const dot = document.createElement('span');
    dot.className = 'dot';
    tab.append(dot, document.createTextNode(machine.hostname));
    tab.addEventListener('click', () => showMachine(machine.name));
    $('terminal-tabs').append(tab);
    const pane = document.createElement('div');
    pane.className = 'term';
    pane.hidden = true;
    pane.dataset.machine = machine.name;
    $('terminals').append(pane);
    terminals.set(machine.name, { tab, pane, state: { kind: 'connecting' } });
  }
  if (!activeMachine) showMachine((machines[0] as Machine).name);
}

function showMachine(name: string): void {
  activeMachine = name;
  for (const [machine, entry] of terminals) {
    entry.pane.hidden = machine !== name;
    entry.tab.classList.toggle('active', machine === name);
  }
  const entry = terminals.get(name);
  if (!entry) return;
  // Opened when first shown: a session (and its recording) per machine actually used.
  if (!entry.terminal && !finished) {
    entry.terminal = new LabTerminal(entry.pane, {
      machine: name,
      onState: (state) => {
        entry.state = state;
        showTerminalState(name);
      },
    });
  }
  entry.terminal?.refit();
  entry.terminal?.focus();
  showTerminalState(name);
}

function showTerminalState(name: string): void {
  const entry = terminals.get(name);
  const machine = me?.access?.machines.find((m) => m.name === name);
  if (!entry || !machine || finished) return;
  const state = entry.state;
  const dot = entry.tab.querySelector('.dot') as HTMLElement;
  dot.className = `dot ${state.kind === 'open' ? 'on' : state.kind === 'closed' || state.kind === 'lost' ? 'off' : 'wait'}`;
  if (name !== activeMachine) return;
  const status = $('terminal-status');
  const values = { machine: machine.hostname, user: machine.user, sudo: me?.access?.sudoPassword ?? '', attempt: state.kind === 'reconnecting' ? state.attempt : 0 };
  status.className = `terminal-status${state.kind === 'closed' || state.kind === 'lost' ? ' bad' : ''}`;
  const action = (label: string) => {
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = label;
    button.addEventListener('click', () => {
      entry.state = { kind: 'connecting' };
      entry.terminal?.reopen();
      showTerminalState(name);
    });
    return button;
  };
  switch (state.kind) {
    case 'connecting':
      return status.replaceChildren(fill(w.connecting, values));
    case 'open':
      return status.replaceChildren(fill(w.connected, values));
    case 'reconnecting':
      return status.replaceChildren(fill(w.reconnecting, values));
    case 'lost':
      void loadMe();
      return status.replaceChildren(fill(w.lost, values), action(w.retry));
    case 'closed':
      if (state.reason === 'time-up' || state.reason === 'revoked') return finish(state.reason);
      void loadMe();
      if (state.reason === 'reset') return status.replaceChildren(w.resetting, action(w.reopen));
      if (state.reason === 'unreachable' || state.reason === 'error') return status.replaceChildren(fill(w.unreachable, values), action(w.retry));
      return status.replaceChildren(fill(w.sessionEnded, values), action(w.reopen));
  }
}

// ---- start ---------------------------------------------------------------

function start(): void {
  for (const el of document.querySelectorAll<HTMLElement>('[data-lang]')) {
    el.addEventListener('click', () => {
      chooseLanguage(el.dataset.lang as Language);
      setLanguage(el.dataset.lang as Language);
    });
  }
  for (const tab of document.querySelectorAll<HTMLButtonElement>('.left .tabs button')) {
    tab.addEventListener('click', () => {
      for (const other of document.querySelectorAll<HTMLButtonElement>('.left .tabs button')) other.classList.toggle('active', other === tab);
      for (const panel of document.querySelectorAll<HTMLElement>('.left .panel')) panel.hidden = panel.id !== `panel-${tab.dataset.panel}`;
    });
  }
  $('signin-form').addEventListener('submit', (e) => void signIn(e as SubmitEvent));
  for (const area of document.querySelectorAll<HTMLTextAreaElement>('[data-field]')) area.addEventListener('input', reportTyped);
  $('selfcheck-run').addEventListener('click', () => void selfCheck());
  $('signout').addEventListener('click', () => {
    if (!window.confirm(w.signOutConfirm)) return;
    void flushReport()
      .then(() => api('DELETE', '/api/session'))
      .finally(() => location.reload());
  });
  setLanguage(lang);
  // Already signed in (the cookie): straight to the exam.
  api<{ role: string }>('GET', '/api/session').then(
    (who) => (who.role === 'candidate' ? enterExam() : showSignIn()),
    (err: unknown) => showSignIn(err instanceof ApiError && err.status !== 401 ? signInMessage(err) : ''),
  );
}

start();
