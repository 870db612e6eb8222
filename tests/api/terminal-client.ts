import WebSocket from 'ws';

/** A candidate's browser terminal, as a test drives it: the WebSocket of the page, without the page. */
export class TerminalClient {
  output = '';
  sessionId?: string;
  closed?: { reason: string; message: string };
  readonly ws: WebSocket;
  private readonly waiters = new Set<() => void>();

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data, isBinary) => {
      if (isBinary) this.output += (data as Buffer).toString('utf8');
      else {
        const message = JSON.parse(String(data)) as { type: string; id?: string; reason?: string; message?: string };
        if (message.type === 'session') this.sessionId = message.id;
        if (message.type === 'closed') this.closed = { reason: message.reason as string, message: message.message as string };
      }
      for (const w of this.waiters) w();
    });
    ws.on('close', () => {
      for (const w of this.waiters) w();
    });
  }

  /** Opens `/api/me/terminal` with these headers (Cookie, Origin) and query; rejects with the HTTP status when refused. */
  static open(url: string, query: string, headers: Record<string, string>): Promise<TerminalClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/api/me/terminal?${query}`, { headers });
      const client = new TerminalClient(ws);
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}: ${body}`), { status: res.statusCode, body })));
      });
      ws.once('error', reject);
    });
  }

  type(text: string): void {
    this.ws.send(Buffer.from(text, 'utf8'), { binary: true });
  }

  resize(cols: number, rows: number): void {
    this.ws.send(JSON.stringify({ type: 'resize', cols, rows }));
  }

  /** Waits until the output (or the state) satisfies the test. */
  waitFor(what: string, done: () => boolean, timeoutMs = 20_000): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!done()) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`timed out waiting for ${what}; output so far: ${JSON.stringify(this.output.slice(-500))}, closed: ${JSON.stringify(this.closed)}`));
      }, timeoutMs);
      this.waiters.add(check);
    });
  }

  waitForText(text: string | RegExp, timeoutMs?: number): Promise<void> {
    return this.waitFor(String(text), () => (typeof text === 'string' ? this.output.includes(text) : text.test(this.output)), timeoutMs);
  }

  close(): void {
    this.ws.close();
  }
}
