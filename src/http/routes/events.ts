import type { ServerDeps } from '../deps.js';
import { route, type Route } from '../route.js';
import { examParams } from '../schemas.js';

/** How often the stream looks at the exam, and how long it stays silent at most. */
export const EVENTS_WATCH_MS = 500;
export const EVENTS_KEEPALIVE_MS = 5_000;

/**
 * The room view's live feed: server-sent events, `event: summary` with the
 * same JSON as GET /api/exams/{id}, sent as soon as it changes (looked at
 * every half second on the server, the seconds left aside, which change
 * every second) and at least every 5 s, so a page never polls. The stream
 * ends when the client leaves or the daemon stops.
 */
export function eventRoutes(deps: ServerDeps, summary: (examId: string) => unknown = (examId) => deps.reader.summary(examId)): Route[] {
  return [
    route({
      method: 'get',
      path: '/api/exams/:examId/events',
      tag: 'exams',
      summary: 'Server-sent events for the room view: `event: summary` (the JSON of GET /api/exams/{examId}) each time it changes, and at least every 5 s',
      access: ['operator', 'jury'],
      params: examParams,
      success: { status: 200, description: 'An event stream (text/event-stream) that stays open', contentType: 'text/event-stream' },
      errors: [404],
      handle({ params, req, res }) {
        const { examId } = params;
        let current = summary(examId); // an unknown exam is a 404 before the stream opens
        res.status(200);
        res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
        res.setHeader('Cache-Control', 'no-cache, no-transform');
        res.setHeader('Connection', 'keep-alive');
        res.setHeader('X-Accel-Buffering', 'no'); // a reverse proxy must not hold events back
        res.flushHeaders();
        req.socket.setNoDelay(true);
        let seq = 0;
        let lastKey = '';
        let lastSent = 0;
        const send = (value: unknown) => {
          seq += 1;
          lastKey = changeKey(value);
          lastSent = deps.clock.now();
          res.write(`event: summary\nid: ${seq}\ndata: ${JSON.stringify(value)}\n\n`);
        };
        res.write('retry: 2000\n\n');
        send(current);
        return new Promise<void>((resolve) => {
          const timer = setInterval(() => {
            try {
              current = summary(examId);
            } catch (err) {
              res.write(`event: error\ndata: ${JSON.stringify({ message: (err as Error).message })}\n\n`);
              stop();
              res.end();
              return;
            }
            if (changeKey(current) !== lastKey || deps.clock.now() - lastSent >= EVENTS_KEEPALIVE_MS) send(current);
          }, EVENTS_WATCH_MS);
          const stop = () => {
            clearInterval(timer);
            resolve();
          };
          req.on('close', stop);
          res.on('close', stop);
        });
      },
    }),
  ];
}

/** What counts as a change: everything but the seconds left (the page counts those down from the deadline). */
function changeKey(value: unknown): string {
  return JSON.stringify(value, (key, v: unknown) => (key === 'remainingSeconds' ? undefined : v));
}
