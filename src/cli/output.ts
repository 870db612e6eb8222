import type { CheckResult } from '../grading/index.js';
import type { Score } from '../grading/index.js';
import type { LabRecord } from '../labs/index.js';

/** Lays out rows as aligned columns. */
export function table(rows: readonly (readonly string[])[], options: { indent?: string } = {}): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, [...cell].length)));
  return rows
    .map((row) => (options.indent ?? '') + row.map((cell, i) => (i === row.length - 1 ? cell : cell + ' '.repeat((widths[i] ?? 0) - [...cell].length))).join('  ').trimEnd())
    .join('\n');
}

const MARK: Record<CheckResult['status'], string> = { pass: 'PASS', fail: 'FAIL', error: 'ERROR', skipped: 'SKIP' };

export function formatPoints(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(2);
}

/** The score table a jury reads: one line per check, subtotals, verdict. */
export function scoreReport(results: readonly CheckResult[], score: Score): string {
  const lines: string[] = [];
  lines.push(
    table([
      ['', 'points', 'check', 'machine', 'title'],
      ...results.map((r) => [MARK[r.status], `${formatPoints(r.points)}/${formatPoints(r.maxPoints)}`, r.checkId, r.machine, r.title]),
    ]),
  );
  const notes = results.filter((r) => r.status !== 'pass');
  if (notes.length) {
    lines.push('', 'Details:');
    for (const r of notes) {
      lines.push(`  ${r.checkId} (${MARK[r.status].toLowerCase()})`);
      if (r.message) lines.push(`    ${r.message}`);
      if (r.expected) lines.push(`    expected: ${r.expected}`);
      if (r.actual) lines.push(`    actual:   ${r.actual}`);
    }
  }
  lines.push('', 'Competencies:');
  lines.push(table(score.byCompetency.map((c) => [c.id, `${formatPoints(c.points)}/${formatPoints(c.maxPoints)}`, c.title]), { indent: '  ' }));
  const verdict = score.passed ? 'PASSED' : 'NOT PASSED';
  lines.push('', `Total: ${formatPoints(score.points)}/${formatPoints(score.maxPoints)} (${score.percent}%), pass mark ${score.passMark}%: ${verdict}`);
  if (!score.complete) lines.push(`Provisional: ${score.errors.length} check(s) could not be decided (${score.errors.join(', ')}); regrade with \`examlab lab grade\`.`);
  return lines.join('\n');
}

/** How the candidate reaches their lab from this host. */
export function connectionInfo(lab: LabRecord, keyFile: string): string {
  const machines = (lab.topology?.machines ?? []).filter((m) => m.loginUser);
  if (!machines.length) return 'No machine of this lab accepts candidate logins.';
  const lines = [`Candidate password: ${lab.secrets.candidatePassword}`];
  for (const m of machines) {
    lines.push(`  ${m.name}: ssh -i ${keyFile} ${m.loginUser}@${m.address}`);
    // A VM also has a console, which works when its network does not.
    if (m.console) lines.push(`  ${m.name} (serial console): examlab lab console ${lab.id} ${m.name}`);
  }
  return lines.join('\n');
}
