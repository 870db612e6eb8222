import { z } from 'zod';
import { CANDIDATE_ID, CSV_DIALECTS, MAX_CANDIDATES, XLSX_CONTENT_TYPE, rosterEntrySchema } from '../exams/index.js';
import { isTimeZone } from '../util/dates.js';
import { durationSchema } from '../util/units.js';

/** Request shapes, checked at the edge; the services only see what they produce. */

export const examParams = z.strictObject({ examId: z.string().regex(/^[0-9a-f]{12}$/, 'an exam id is 12 hexadecimal characters') });
export const candidateParams = examParams.extend({ candidateId: z.string().regex(CANDIDATE_ID, 'not a candidate id') });

const durationText = (what: string) => durationSchema(what, { positive: true });

export const createExamBody = z
  .strictObject({
    title: z.string().trim().min(1).max(200).optional(),
    scenario: z.string().min(1).max(100).optional().describe('A scenario of the scenarios folder, by name (e.g. "broken-workstation")'),
    scenarioYaml: z.string().min(1).max(512 * 1024).optional().describe('Or the scenario itself, as YAML text'),
    candidates: z.array(rosterEntrySchema).max(MAX_CANDIDATES).optional().describe('The roster; or rosterCsv, or rosterFile'),
    rosterCsv: z
      .string()
      .min(1)
      .optional()
      .describe('Or the roster as CSV text: a header row (identifier; last and first name, or full name; optionally email; in French or English), then one candidate per line'),
    rosterFile: z
      .base64()
      .min(1)
      .optional()
      .describe("Or the roster file as the centre's system exported it, base64-encoded: CSV (UTF-8, Windows-1252; \";\", \",\" or tab) or XLSX"),
    duration: durationText('duration').optional().describe("Default: the scenario's duration"),
    start: z
      .union([z.literal('now'), z.literal('manual'), z.strictObject({ at: z.iso.datetime({ offset: true }) })])
      .default('manual')
      .describe('"now", "manual" (POST .../start) or { "at": ISO date-time }'),
    prepare: z
      .boolean()
      .default(false)
      .describe('Build and verify every lab now, candidates locked out, so that the start opens them all at once (same as POST .../prepare); not with start "now"'),
    spares: z
      .number()
      .int()
      .min(0)
      .max(10)
      .default(0)
      .describe('Labs kept built and verified for no one while the exam is prepared or runs: a reset then swaps one in within seconds (its own values) instead of rebuilding'),
    end: z
      .strictObject({
        autoFreeze: z.boolean().default(true).describe("Freeze and grade each lab at its candidate's deadline"),
        keepLabs: z.boolean().default(true).describe('Keep graded labs (paused) for regrading; false destroys each lab once its grade is complete'),
      })
      .prefault({}),
    mode: z.enum(['exam', 'practice']).default('exam').describe('practice: candidates may grade their own lab and see their score'),
    timeZone: z
      .string()
      .refine(isTimeZone, { message: 'not a time zone: use an IANA name such as "Europe/Paris" or "America/Cayenne"' })
      .optional()
      .describe("The time zone of the dates people read (pages, reports, exports); default: the server's"),
  })
  .superRefine((b, ctx) => {
    if (b.prepare && b.start === 'now') ctx.addIssue({ code: 'custom', path: ['prepare'], message: 'an exam that starts now has nothing to prepare ahead: use start "manual" or { "at": ... }' });
    if ((b.scenario === undefined) === (b.scenarioYaml === undefined)) ctx.addIssue({ code: 'custom', path: ['scenario'], message: 'give exactly one of scenario (a name) or scenarioYaml' });
    if ([b.candidates, b.rosterCsv, b.rosterFile].filter((r) => r !== undefined).length !== 1) {
      ctx.addIssue({ code: 'custom', path: ['candidates'], message: 'give exactly one of candidates, rosterCsv or rosterFile' });
    }
  });

export const rosterBody = z.array(rosterEntrySchema).max(MAX_CANDIDATES);

export const rosterCheckQuery = z.strictObject({
  name: z
    .string()
    .max(200)
    .regex(/^[^/\\\x00-\x1f]+$/, 'a file name, without a folder')
    .optional()
    .describe('The file\'s name, which the report names rows by (default "roster")'),
});

/** Roster files, as uploaded: their content decides how they are read. */
export const ROSTER_FILE_TYPES = ['text/csv', 'text/plain', 'text/tab-separated-values', 'application/vnd.ms-excel', XLSX_CONTENT_TYPE, 'application/octet-stream'] as const;

export const resultsCsvQuery = z.strictObject({
  dialect: z
    .enum(CSV_DIALECTS)
    .default('plain')
    .describe('plain: "," and decimal points, for programs; excel-fr: ";", decimal commas and a UTF-8 BOM, as Excel on French Windows opens it'),
});

export const extendBody = z.strictObject({ duration: durationText('duration').describe('Time to add, e.g. "15m"') });

export const revokeBody = z.strictObject({ reason: z.string().max(500).optional() }).optional();

export const markParams = candidateParams.extend({ criterionId: z.string().min(1).max(100) });
export const markBody = z.strictObject({
  level: z.string().min(1).max(100).describe("The id of one of the criterion's rubric levels"),
  comment: z.string().max(5000).optional(),
});

export const reportBody = z
  .strictObject({
    diagnosis: z.string().max(20_000).describe('What was wrong, and how it was found'),
    actions: z.string().max(20_000).describe('What was done'),
    result: z.string().max(20_000).describe('What works now, what does not'),
  })
  .refine((r) => [r.diagnosis, r.actions, r.result].some((t) => t.trim().length > 0), { message: 'the report is empty', path: ['diagnosis'] });

export const auditQuery = z.strictObject({
  exam: z.string().optional(),
  candidate: z.string().optional(),
  after: z.coerce.number().int().min(0).optional().describe('Only records after this sequence number'),
  limit: z.coerce.number().int().min(1).max(5000).default(1000),
  anchor: z
    .string()
    .regex(/^[1-9][0-9]{0,15}:[0-9a-fA-F]{8,64}$/, 'an audit anchor as printed on an export: record:digest, for example 42:1a2b3c4d5e6f7a8b')
    .optional()
    .describe('An audit anchor read off an export or report (record:digest): the answer says whether the chain still holds it'),
});

export const tokenBody = z.strictObject({ name: z.string().trim().min(1).max(100), role: z.enum(['operator', 'jury']) });
export const tokenParams = z.strictObject({ tokenId: z.string().min(1).max(64) });
