import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { createTestApp, inlineScenario, scenarioHead } from './helpers.js';
import { withSession } from '../../src/remote/ssh-client.js';
import { requireTarget } from '../../src/labs/access.js';

/**
 * The candidate is root: they may replace the tools a naive grader would
 * ask. Here systemctl, ss, ps, nslookup and friends are replaced by liars
 * that print the passing answer, and a library is preloaded into every
 * dynamic program; the grade of the still-broken lab must not move.
 */
const SCENARIO = `${scenarioHead('trust')}machines:
  - name: pc
    image: workstation
setup:
  - machine: pc
    run: systemctl enable --now cups.service
faults:
  - machine: pc
    run: |
      systemctl disable --now cups.service cups.socket cups.path
      printf 'nameserver 10.255.255.1\\n' > /etc/resolv.conf
checks:
  - { id: cups-active, title: t, machine: pc, kind: service, name: cups, active: true, enabled: true }
  - { id: cups-port, title: t, machine: pc, kind: port, port: 631 }
  - { id: cupsd-process, title: t, machine: pc, kind: process, name: cupsd }
  - { id: dns, title: t, machine: pc, kind: dns, name: www.example.lab, timeout: 4s }
`;

/** Liars: each prints what a grader that trusted it would take as a pass. */
const LIARS = `
for f in /usr/bin/systemctl /bin/systemctl; do
  cat > "$f" <<'EOF'
#!/bin/sh
case "$*" in
  *is-enabled*) echo enabled ;;
  *show*) printf 'ActiveState=active\\nUnitFileState=enabled\\nLoadState=loaded\\n' ;;
  *) echo active ;;
esac
exit 0
EOF
  chmod 755 "$f"
done
for f in /usr/bin/ss /bin/ss /usr/sbin/ss; do
  printf '#!/bin/sh\\necho "LISTEN 0 128 0.0.0.0:631 0.0.0.0:*"\\n' > "$f"; chmod 755 "$f"
done
printf '#!/bin/sh\\necho "  PID TTY TIME CMD"; echo "  77 ?  00:00:00 cupsd"\\n' > /usr/bin/ps; chmod 755 /usr/bin/ps
for f in /usr/bin/nslookup /usr/bin/host /usr/bin/dig /usr/bin/getent; do
  printf '#!/bin/sh\\necho "www.example.lab has address 10.0.0.5"\\n' > "$f"; chmod 755 "$f"
done
# A library preloaded into every dynamically linked program.
printf '/usr/lib/examlab-liar.so\\n' > /etc/ld.so.preload
head -c 64 /dev/urandom > /usr/lib/examlab-liar.so
`;

describe('the grader does not take a hostile machine\'s word for it', () => {
  let app: Awaited<ReturnType<typeof createTestApp>>;
  let labId: string;

  beforeAll(async () => {
    app = await createTestApp();
    labId = (await app.labs.up(inlineScenario(SCENARIO, 'trust'))).id;
  }, 300_000);

  afterAll(async () => {
    if (labId) await app.labs.destroy(labId);
    app?.cleanup();
  }, 120_000);

  test('replacing systemctl, ss, ps and the resolver tools does not move the grade of a broken lab', async () => {
    const before = await app.labs.grade(labId);
    expect(before.results.map((r) => [r.checkId, r.status])).toEqual([
      ['cups-active', 'fail'],
      ['cups-port', 'fail'],
      ['cupsd-process', 'fail'],
      ['dns', 'fail'],
    ]);

    const lab = app.stores.labs.get(labId);
    const planted = await withSession(requireTarget(lab, 'pc'), 10_000, (s) => s.exec('/bin/sh -s', { stdin: LIARS, timeoutMs: 30_000 }));
    expect(planted.exitCode).toBe(0);
    // The liars are in place: the machine's own tools now claim everything works.
    const lie = await withSession(requireTarget(lab, 'pc'), 10_000, (s) => s.exec('LD_PRELOAD= /usr/bin/systemctl is-active cups; /usr/bin/ss -ltn', { timeoutMs: 10_000 }));
    expect(lie.stdout).toContain('active');
    expect(lie.stdout).toContain('0.0.0.0:631');

    const after = await app.labs.grade(labId);
    expect(after.results.map((r) => [r.checkId, r.status])).toEqual(before.results.map((r) => [r.checkId, r.status]));
    expect(after.score?.points).toBe(before.score?.points);
    expect(after.score?.points).toBe(0);
  }, 120_000);
});
