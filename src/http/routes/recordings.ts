import { createReadStream, readFileSync, statSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { z } from 'zod';
import { RECORDING_ID } from '../../terminal/index.js';
import type { ServerDeps } from '../deps.js';
import { RawReply, route, type Route } from '../route.js';
import { candidateParams, examParams } from '../schemas.js';

const recordingParams = candidateParams.extend({ recordingId: z.string().regex(RECORDING_ID, 'not a recording id') });

/**
 * The candidates' terminal sessions, recorded as asciicast v2 (SSH gateway
 * and browser alike): the list, one recording, every recording of an exam.
 * Watching one live is a WebSocket (…/recordings/{id}/live, src/http/sockets.ts).
 */
export function recordingRoutes(deps: ServerDeps): Route[] {
  const { reader, recordings } = deps;
  return [
    route({
      method: 'get',
      path: '/api/exams/:examId/candidates/:candidateId/recordings',
      tag: 'recordings',
      summary: "A candidate's terminal sessions (SSH or browser), recorded as asciicast v2; live ones can be watched at …/recordings/{recordingId}/live (WebSocket)",
      access: ['operator', 'jury'],
      params: candidateParams,
      success: { status: 200, description: '{ recordings: [{ id, machine, via, startedAt, endedAt?, live, bytes }] }' },
      errors: [404],
      handle({ params }) {
        reader.candidateDetail(params.examId, params.candidateId);
        return { recordings: recordings.list(params.examId, params.candidateId) };
      },
    }),
    route({
      method: 'get',
      path: '/api/exams/:examId/candidates/:candidateId/recordings/:recordingId.cast',
      tag: 'recordings',
      summary: 'One recording, as asciicast v2 (what asciinema-player replays); a live one as far as it goes',
      access: ['operator', 'jury'],
      params: recordingParams,
      success: { status: 200, description: 'asciicast v2', contentType: 'application/x-asciicast' },
      errors: [404],
      handle({ params }) {
        const file = recordings.castFile(params.examId, params.candidateId, params.recordingId);
        return new RawReply('application/x-asciicast; charset=utf-8', readFileSync(file));
      },
    }),
    route({
      method: 'get',
      path: '/api/exams/:examId/recordings.tar',
      tag: 'recordings',
      summary: "Every recording of the exam, to keep with the results: <candidate>/<id>.cast (asciicast v2) and <id>.json (machine, how, when)",
      access: ['operator', 'jury'],
      params: examParams,
      success: { status: 200, description: 'A tar archive', contentType: 'application/x-tar' },
      errors: [404],
      async handle({ params, res }) {
        reader.exam(params.examId);
        const pack = tar.pack();
        res.status(200).type('application/x-tar').attachment(`recordings-${params.examId}.tar`);
        const sending = pipeline(pack, res);
        for (const file of recordings.files(params.examId)) {
          const size = statSync(file.path).size;
          const entry = pack.entry({ name: file.name, size, mode: 0o644, mtime: statSync(file.path).mtime });
          await pipeline(createReadStream(file.path, { start: 0, end: Math.max(0, size - 1) }), entry);
        }
        pack.finalize();
        await sending;
      },
    }),
  ];
}
