// The import rule of examlab's source (docs/architecture.md): each folder of
// src/ is a concept in a layer, and imports only go down the layers:
//   root and CLI → faces → terminal → services → domain → providers → images, remote → util
// `make test` runs it (make imports); tests/unit/architecture/imports.test.ts
// shows it catches each kind of violation.

/** Concept folders of src/, bottom layer first. */
const LAYERS = [
  ['util'],
  ['images', 'remote'],
  ['providers'],
  ['scenario', 'checks', 'grading', 'access', 'audit'],
  ['labs', 'exams'],
  ['terminal'],
  ['http', 'gateway'],
  ['cli', 'daemon'],
];

const folders = (list) => `^src/(${list.join('|')})/`;

/** How a concept is entered from another (util is a toolbox, not a concept). */
const FRONT_DOORS = ['^src/util/', '^src/[^/]+/index\\.ts$', '^src/providers/(docker|libvirt)/index\\.ts$'];

/** For each layer: it may not import any layer above it. */
const layerRules = LAYERS.slice(0, -1).map((layer, i) => ({
  name: `layer-${layer.join('-')}`,
  comment: `${layer.join(', ')} may not import ${LAYERS.slice(i + 1).flat().join(', ')}: imports go down the layers`,
  severity: 'error',
  from: { path: folders(layer) },
  to: { path: folders(LAYERS.slice(i + 1).flat()) },
}));

module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: 'no-cycle',
      comment: 'no module may reach itself again through its imports',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'core-names-no-provider',
      comment: 'only the composition root (and the CLI\'s host commands) names an engine; the rest speaks the provider interface',
      severity: 'error',
      from: { path: '^src/', pathNot: ['^src/daemon/', '^src/cli/', '^src/providers/'] },
      to: { path: '^src/providers/(docker|libvirt)/' },
    },
    {
      name: 'providers-apart',
      comment: 'a provider never imports another',
      severity: 'error',
      from: { path: '^src/providers/(docker|libvirt)/' },
      to: { path: '^src/providers/(docker|libvirt)/', pathNot: '^src/providers/$1/' },
    },
    {
      name: 'front-door',
      comment: 'another concept is imported through its index.ts only (util is a toolbox, not a concept; the CLI takes the modules of the composition root one by one, to load only what a command needs)',
      severity: 'error',
      from: { path: '^src/([^/]+)/', pathNot: '^src/daemon/' },
      to: { path: '^src/[^/]+/', pathNot: ['^src/$1/', ...FRONT_DOORS, '^src/daemon/'] },
    },
    {
      name: 'front-door-root',
      comment: 'the composition root imports a concept through its index.ts, or opens one of its stores alone (a *-store.ts) for a command that only reads it',
      severity: 'error',
      from: { path: '^src/daemon/' },
      to: { path: '^src/[^/]+/', pathNot: ['^src/daemon/', ...FRONT_DOORS, '^src/[^/]+/[^/]+-store\\.ts$'] },
    },
    {
      name: 'engine-front-door',
      comment: 'an engine\'s folder is imported through its index.ts only',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/providers/(docker|libvirt)/' },
      to: { path: '^src/providers/(docker|libvirt)/', pathNot: '^src/providers/(docker|libvirt)/index\\.ts$' },
    },
    {
      name: 'cli-start-light',
      comment: 'what every examlab command loads (bin, main, context, the command declarations) stays small, so that `--help` answers at once: what a command does, and what that needs, is imported when it runs (src/cli/actions/)',
      severity: 'error',
      from: { path: ['^src/cli/(bin|main|context)\\.ts$', '^src/cli/commands/'] },
      to: {
        dynamic: false,
        dependencyTypesNot: ['type-only', 'core'],
        pathNot: ['^src/cli/(main|context)\\.ts$', '^src/cli/commands/', '^src/util/errors\\.ts$', 'node_modules/commander/'],
      },
    },
    {
      name: 'faces-use-services',
      comment: 'the faces receive services, never stores or the database',
      severity: 'error',
      from: { path: '^src/(http|gateway|cli)/' },
      to: { path: ['-store\\.ts$', '^src/util/database\\.ts$', '^src/access/tokens\\.ts$'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
