import { apiFetch } from './api.js';

export interface EventStreamHandlers {
  /** One event: its name (`message` when it has none) and its data. */
  event(name: string, data: string): void;
  /** Whether the stream is open now (false while it reconnects). */
  state?(open: boolean, status?: number): void;
}

/**
 * Reads a server-sent event stream through fetch (so it carries the page's
 * credentials, cookie or header), and reopens it after a drop. Returns a
 * function that closes it for good.
 */
export function openEventStream(path: string, handlers: EventStreamHandlers): () => void {
  let closed = false;
  let controller: AbortController | undefined;
  let retryMs = 2000;
  const run = async () => {
    while (!closed) {
      controller = new AbortController();
      let status: number | undefined;
      try {
        const res = await apiFetch(path, { headers: { Accept: 'text/event-stream' }, signal: controller.signal });
        status = res.status;
        if (!res.ok || !res.body) {
          handlers.state?.(false, res.status);
          await res.body?.cancel();
          if (res.status === 401 || res.status === 403 || res.status === 404) return; // retrying will not help
        } else {
          handlers.state?.(true, res.status);
          await read(res.body);
        }
      } catch {
        // dropped: reopen below
      }
      if (closed) return;
      handlers.state?.(false, status);
      await new Promise((resolve) => setTimeout(resolve, retryMs));
    }
  };
  const read = async (body: ReadableStream<Uint8Array>) => {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let name = 'message';
        const data: string[] = [];
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) continue;
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'event') name = value;
          else if (field === 'data') data.push(value);
          else if (field === 'retry' && /^\d+$/.test(value)) retryMs = Number(value);
        }
        if (data.length) handlers.event(name, data.join('\n'));
      }
    }
  };
  void run();
  return () => {
    closed = true;
    controller?.abort();
  };
}
