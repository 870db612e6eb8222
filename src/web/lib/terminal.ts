import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';

/** Why the daemon closed a terminal (the reasons of its `closed` message). */
export type ClosedReason = 'time-up' | 'ended' | 'revoked' | 'reset' | 'unreachable' | 'error';

export type TerminalState =
  | { kind: 'connecting' }
  | { kind: 'open' }
  /** The connection dropped; trying again (the shell waits up to a minute on the daemon). */
  | { kind: 'reconnecting'; attempt: number }
  | { kind: 'closed'; reason: ClosedReason; message: string }
  /** Could not (re)connect: the page decides why (exam over, access withdrawn, network). */
  | { kind: 'lost' };

export interface TerminalOptions {
  machine: string;
  onState(state: TerminalState): void;
}

/** How long the daemon keeps a dropped shell: past it, a reconnection opens a new one. */
const RESUME_MS = 60_000;

/**
 * One machine's terminal in the page: xterm.js over the daemon's WebSocket
 * (`/api/me/terminal`, cookie-authenticated). Keystrokes go as UTF-8 bytes,
 * output comes as bytes; resizes follow the element. After a blip it
 * reconnects to the same shell (`resume`), which replays what was printed.
 */
export class LabTerminal {
  readonly term: Terminal;
  private readonly fit = new FitAddon();
  private ws?: WebSocket;
  private sessionId?: string;
  private closedByServer = false;
  private attempts = 0;
  private droppedAt?: number;
  private readonly encoder = new TextEncoder();
  private readonly resizeObserver: ResizeObserver;
  private disposed = false;

  constructor(
    readonly element: HTMLElement,
    private readonly options: TerminalOptions,
  ) {
    this.term = new Terminal({
      cursorBlink: true,
      fontFamily: '"DejaVu Sans Mono", Consolas, "Liberation Mono", monospace',
      fontSize: 15,
      scrollback: 5000,
      theme: { background: '#111417', foreground: '#e6e6e6', cursor: '#e6e6e6', selectionBackground: '#3d5a80' },
    });
    this.term.loadAddon(this.fit);
    this.term.open(element);
    // Copy: Ctrl+Shift+C, or Ctrl+C when text is selected (otherwise Ctrl+C interrupts, as in any terminal).
    // Paste: Ctrl+V or Ctrl+Shift+V (the browser's paste event, which xterm.js takes).
    this.term.attachCustomKeyEventHandler((e) => {
      if (e.type !== 'keydown') return true;
      const copy = (e.ctrlKey && e.shiftKey && e.code === 'KeyC') || (e.ctrlKey && !e.shiftKey && e.code === 'KeyC' && this.term.hasSelection());
      if (copy) {
        void navigator.clipboard?.writeText(this.term.getSelection()).catch(() => undefined);
        e.preventDefault();
        return false;
      }
      if (e.ctrlKey && (e.code === 'KeyV' || (e.shiftKey && e.code === 'KeyV'))) return false; // let the browser paste
      return true;
    });
    this.term.onData((data) => this.send(this.encoder.encode(data)));
    this.term.onBinary((data) => this.send(Uint8Array.from(data, (c) => c.charCodeAt(0) & 255)));
    this.term.onResize(({ cols, rows }) => this.sendResize(cols, rows));
    this.resizeObserver = new ResizeObserver(() => this.refit());
    this.resizeObserver.observe(element);
    this.connect();
  }

  focus(): void {
    this.term.focus();
  }

  /** Fits the terminal to its element (when shown). */
  refit(): void {
    if (this.element.offsetParent === null || this.element.clientWidth === 0) return;
    try {
      this.fit.fit();
    } catch {
      // Not laid out yet.
    }
  }

  /** Opens a new shell after the previous one closed (an `exit`, a reset). */
  reopen(): void {
    this.sessionId = undefined;
    this.closedByServer = false;
    this.attempts = 0;
    this.term.reset();
    this.connect();
  }

  dispose(): void {
    this.disposed = true;
    this.resizeObserver.disconnect();
    this.ws?.close();
    this.term.dispose();
  }

  private connect(): void {
    this.refit();
    const query = new URLSearchParams({ machine: this.options.machine, cols: String(this.term.cols), rows: String(this.term.rows) });
    if (this.sessionId) query.set('resume', this.sessionId);
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${scheme}//${location.host}/api/me/terminal?${query.toString()}`);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    if (!this.attempts) this.options.onState({ kind: 'connecting' });
    ws.onmessage = (event: MessageEvent<ArrayBuffer | string>) => {
      if (typeof event.data !== 'string') return this.term.write(new Uint8Array(event.data));
      const message = JSON.parse(event.data) as { type: string; id?: string; reason?: ClosedReason; message?: string };
      if (message.type === 'session') {
        this.sessionId = message.id;
        this.attempts = 0;
        this.droppedAt = undefined;
        this.options.onState({ kind: 'open' });
        this.sendResize(this.term.cols, this.term.rows);
      } else if (message.type === 'closed') {
        this.closedByServer = true;
        this.options.onState({ kind: 'closed', reason: message.reason ?? 'ended', message: message.message ?? '' });
      }
    };
    ws.onclose = () => {
      if (this.ws !== ws || this.disposed || this.closedByServer) return;
      this.droppedAt ??= Date.now();
      this.attempts += 1;
      // Past the daemon's minute the shell is gone: the page asks why (the exam may be over).
      if (Date.now() - this.droppedAt > RESUME_MS + 5_000 || this.attempts > 30) return this.options.onState({ kind: 'lost' });
      this.options.onState({ kind: 'reconnecting', attempt: this.attempts });
      setTimeout(() => this.connect(), Math.min(5_000, 500 * 2 ** Math.min(this.attempts - 1, 4)));
    };
  }

  private send(bytes: Uint8Array): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(bytes);
  }

  private sendResize(cols: number, rows: number): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type: 'resize', cols, rows }));
  }
}
