import { posix } from 'node:path';
import { z } from 'zod';
import { CHECK_KINDS, type CheckCommon } from '../checks/index.js';
import { durationSchema, parseSize } from '../util/units.js';

/**
 * Scenario format v1. This schema is the single definition of the format:
 * the loader validates with it, the types below are inferred from it and
 * `schema/scenario.schema.json` is generated from it.
 */

export const SCENARIO_API_VERSION = 'examlab/v1';

const slug = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]*$/, 'use lowercase letters, digits, ".", "_" or "-" (starting with a letter or digit)');

const machineName = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,30}$/, 'use lowercase letters, digits and "-", starting with a letter (at most 31 characters)');

const size = z
  .union([z.string(), z.number()])
  .refine((v) => parseSize(String(v)) !== undefined, { message: 'must be a size like "512M" or "2G"' })
  .transform((v) => parseSize(String(v)) as number);

export const competencySchema = z.strictObject({
  id: z.string().min(1).describe('Competency code, e.g. "CCP1-C2"'),
  title: z.string().min(1),
});

const variableSchema = z
  .strictObject({
    description: z.string().optional(),
    value: z.string().optional().describe('A fixed value'),
    oneOf: z.array(z.string()).min(1).optional().describe('One of these, picked per candidate'),
    random: z
      .strictObject({
        length: z.number().int().min(1).max(64).default(8),
        charset: z.enum(['alnum', 'alpha', 'lower', 'digits', 'hex']).default('alnum'),
        prefix: z.string().default(''),
      })
      .optional()
      .describe('A random string, different per candidate'),
  })
  .refine((v) => [v.value, v.oneOf, v.random].filter((x) => x !== undefined).length === 1, {
    message: 'a variable needs exactly one of value, oneOf or random',
  });

const networkSchema = z.strictObject({
  name: machineName,
  description: z.string().optional(),
});

const attachmentSchema = z.strictObject({
  network: machineName,
  host: z.number().int().min(2).max(254).optional().describe('Host part of the address in the lab subnet (x.y.z.HOST); allocated when absent'),
});

export const LOGIN_USER = /^[a-z_][a-z0-9_-]{0,31}$/;

const machineSchema = z.strictObject({
  name: machineName,
  provider: z.enum(['docker', 'libvirt']).default('docker'),
  image: z.string().min(1).optional().describe('Name of an image under images/ (e.g. "workstation"); none for a VM with boot: network'),
  hostname: z.string().optional().describe('Defaults to the machine name; templates allowed'),
  networks: z.array(attachmentSchema).optional().describe('Defaults to the first network of the scenario'),
  resources: z
    .strictObject({
      cpus: z.number().positive().max(16).default(1),
      memory: size.prefault('512M'),
      pids: z.number().int().min(64).max(65536).default(1024),
      disk: size.optional().describe('A VM: its root disk size. A container: what it may write on top of its image (2G when absent), where the engine can bound it'),
    })
    .prefault({}),
  login: z
    .strictObject({
      user: z.string().regex(LOGIN_USER, 'not a valid user name'),
      sudo: z.boolean().default(true),
    })
    .optional()
    .describe('The candidate may log in as this user (created with a per-lab password and key)'),
  capabilities: z
    // Never SYS_TIME: a container's clock is the host's, so one candidate's `date -s` would move every deadline.
    .array(z.enum(['NET_ADMIN', 'NET_RAW', 'MKNOD']))
    .default([])
    .describe('Extra Linux capabilities beyond what the image declares'),
  devices: z.array(z.enum(['/dev/net/tun'])).default([]),
  tmpfs: z
    .array(z.strictObject({ path: z.string().startsWith('/'), size: size }))
    .default([])
    .describe('Small filesystems of their own (e.g. a log partition that can fill up)'),
  boot: z
    .enum(['kernel', 'disk', 'network'])
    .optional()
    .describe(
      'VMs: "kernel" starts the image\'s kernel directly (the default when the image has one); "disk" starts the disk\'s own boot loader (GRUB, Windows); ' +
        '"network" is a blank machine, no image, an empty disk of resources.disk: it boots from its disk, and from the network (PXE) while its disk has nothing to boot, so a deployment server of the lab installs it, then it boots what was installed',
    ),
  shell: z
    .enum(['sh', 'powershell'])
    .default('sh')
    .describe('Shell of the machine\'s steps and command checks: powershell for Windows guests (OpenSSH on Windows)'),
  disks: z
    .array(z.strictObject({ size: size.describe('e.g. "1G"') }))
    .max(8)
    .default([])
    .describe('VMs: extra empty disks, seen as /dev/vdb, /dev/vdc…'),
}).superRefine((machine, ctx) => {
  if (machine.boot !== 'network') {
    if (machine.image === undefined) ctx.addIssue({ code: 'custom', path: ['image'], message: 'required' });
    return;
  }
  // A blank machine: what it runs comes from the lab's deployment, not from examlab.
  if (machine.image !== undefined) ctx.addIssue({ code: 'custom', path: ['image'], message: 'a machine that boots from the network starts blank: no image (its system comes from the deployment)' });
  if (machine.resources.disk === undefined) ctx.addIssue({ code: 'custom', path: ['resources', 'disk'], message: 'required with boot: network: the size of its blank disk' });
  if (machine.login !== undefined) ctx.addIssue({ code: 'custom', path: ['login'], message: 'examlab makes candidate accounts on machines it builds; a machine deployed over the network gets its accounts from the deployment' });
});

const stepSchema = z
  .strictObject({
    id: slug.optional(),
    title: z.string().optional(),
    machine: machineName,
    run: z.string().optional().describe('Shell script, run as root by /bin/sh'),
    file: z.string().startsWith('/', 'must be an absolute path').optional().describe('Write `content` to this path'),
    content: z.string().optional(),
    upload: z
      .string()
      .refine((p) => !posix.isAbsolute(p) && !posix.normalize(p).startsWith('../') && posix.normalize(p) !== '..', {
        message: "a path inside the scenario's folder (relative, no ..): a scenario copies its own files, never the server's",
      })
      .optional()
      .describe("A file in the scenario's folder (a relative path), copied to `to`"),
    to: z.string().startsWith('/', 'must be an absolute path').optional(),
    reboot: z
      .literal(true)
      .optional()
      .describe('Restart the machine (VMs) and wait until it has booted again, into whatever its disk leads to (emergency mode included)'),
    mode: z.string().regex(/^[0-7]{3,4}$/, 'octal mode like "0644"').optional(),
    owner: z.string().regex(/^[a-z_][a-z0-9_.-]*(:[a-z_][a-z0-9_.-]*)?$/, 'user or user:group').optional(),
    timeout: durationSchema('timeout').prefault('2m'),
  })
  .superRefine((step, ctx) => {
    const actions = [step.run !== undefined, step.file !== undefined, step.upload !== undefined, step.reboot !== undefined].filter(Boolean).length;
    if (actions !== 1) ctx.addIssue({ code: 'custom', message: 'a step needs exactly one of run, file, upload or reboot' });
    if (step.file !== undefined && step.content === undefined) ctx.addIssue({ code: 'custom', path: ['content'], message: 'required with file' });
    if (step.upload !== undefined && step.to === undefined) ctx.addIssue({ code: 'custom', path: ['to'], message: 'required with upload' });
  });

const faultOptionSchema = z.strictObject({
  id: slug,
  title: z.string().min(1).describe('What this variant breaks (for the jury and the results)'),
  steps: z.array(stepSchema).min(1).describe('The steps that break the system this way, run after the fixed faults'),
  solution: z.array(stepSchema).default([]).describe("This variant's own repair, run before the common solution"),
});

/** Interchangeable faults of equal weight: each lab draws one option, so neighbours face different problems of the same difficulty. */
const faultPoolSchema = z
  .strictObject({
    id: slug,
    title: z.string().min(1),
    options: z.array(faultOptionSchema).min(2, 'a pool offers at least two options'),
  })
  .refine((p) => new Set(p.options.map((o) => o.id)).size === p.options.length, { message: 'option ids must be unique', path: ['options'] });

const checkCommon = {
  id: slug,
  title: z.string().min(1),
  description: z.string().optional(),
  machine: machineName,
  points: z.number().min(0).default(1),
  competency: z.string().optional(),
  prerequisites: z.array(slug).default([]).describe('Checks that must pass first; otherwise this one is skipped'),
  hidden: z.boolean().default(false).describe('Not shown to candidates'),
  baseline: z
    .enum(['pass', 'fail', 'any'])
    .default('fail')
    .describe('Expected status in the broken state: "fail" (the fault breaks it), "pass" (a regression guard), "any"'),
  partial: z.boolean().default(false).describe('Award points in proportion to the assertions that hold'),
  timeout: durationSchema('timeout').prefault('10s'),
};

/** Each kind's full check schema: the common fields and its own. */
export const checkSchemas = new Map(CHECK_KINDS.map((k) => [k.kind, z.strictObject({ ...checkCommon, kind: z.literal(k.kind), ...k.fields })]));

const [firstCheck, ...otherChecks] = [...checkSchemas.values()];
if (!firstCheck) throw new Error('no check kind is registered');
export const checkSchema = z.discriminatedUnion('kind', [firstCheck, ...otherChecks]);

const rubricLevelSchema = z.strictObject({
  id: slug,
  title: z.string().min(1).describe('What the jury observed at this level'),
  points: z.number().min(0),
});

/** A criterion the jury scores by hand (the intervention report, the interview), on a rubric of levels. */
export const manualCriterionSchema = z
  .strictObject({
    id: slug,
    title: z.string().min(1),
    description: z.string().optional().describe('Guidance for the jury'),
    competency: z.string().optional(),
    levels: z.array(rubricLevelSchema).min(2).describe('The rubric, from the lowest level to the highest; the criterion is worth its highest points'),
  })
  .refine((c) => new Set(c.levels.map((l) => l.id)).size === c.levels.length, { message: 'level ids must be unique', path: ['levels'] });

export const scenarioSchema = z.strictObject({
  apiVersion: z.literal(SCENARIO_API_VERSION),
  id: slug,
  title: z.string().min(1),
  description: z.string().optional(),
  language: z.enum(['fr', 'en']).default('fr'),
  ccp: z.enum(['CCP1', 'CCP2', 'CCP3']).describe('Certificate block of the RNCP37681 title'),
  competencies: z.array(competencySchema).min(1),
  duration: durationSchema('duration'),
  passMark: z.number().min(0).max(100).default(50).describe('Percentage of the points needed to pass'),
  variables: z.record(z.string().regex(/^[a-z][a-z0-9_]*$/, 'variable names are lowercase identifiers'), variableSchema).default({}),
  networks: z.array(networkSchema).min(1).default([{ name: 'lan' }]),
  machines: z.array(machineSchema).min(1),
  hostLabels: z
    .record(z.string(), z.union([z.string(), z.number(), z.boolean()]))
    .default({})
    .transform((labels) => Object.fromEntries(Object.entries(labels).map(([k, v]) => [k, String(v)])))
    .describe('Labels a lab host must carry to take this scenario\'s labs (the daemon\'s hosts[].labels), e.g. kvm: true'),
  setup: z.array(stepSchema).default([]),
  faults: z.array(stepSchema).default([]),
  faultPools: z
    .array(faultPoolSchema)
    .default([])
    .describe('Pools of interchangeable faults: each lab draws one option per pool (by seat in an exam), recorded with its result'),
  solution: z.array(stepSchema).default([]),
  instructions: z
    .strictObject({ fr: z.string().optional(), en: z.string().optional() })
    .describe('Markdown for the candidate, per language'),
  checks: z.array(checkSchema).min(1),
  manualCriteria: z
    .array(manualCriterionSchema)
    .default([])
    .describe('Criteria scored by the jury (report, interview); their points add to the checks\' points'),
}).transform((scenario) => {
  // A command check runs in its machine's shell unless it names one.
  const powershell = new Set(scenario.machines.filter((m) => m.shell === 'powershell').map((m) => m.name));
  for (const check of scenario.checks as Record<string, unknown>[]) {
    if (check.kind === 'command' && check.shell === undefined) check.shell = powershell.has(check.machine as string) ? 'powershell' : 'sh';
  }
  return scenario;
});

export type ScenarioInput = z.input<typeof scenarioSchema>;
/** A check as parsed: the common fields, plus its kind's own (read by the kind). */
export type Check = CheckCommon & Record<string, unknown>;
export type Scenario = Omit<z.output<typeof scenarioSchema>, 'checks'> & { checks: Check[] };
export type Machine = Scenario['machines'][number];
export type Step = Scenario['setup'][number];
export type Variable = Scenario['variables'][string];
export type ManualCriterion = Scenario['manualCriteria'][number];
/** The JSON Schema editors use to autocomplete scenarios. */
export function scenarioJsonSchema(): object {
  return {
    ...z.toJSONSchema(scenarioSchema, { io: 'input', unrepresentable: 'any' }),
    $id: 'https://examlab.dev/schema/scenario.schema.json',
    title: 'examlab scenario (v1)',
  };
}
