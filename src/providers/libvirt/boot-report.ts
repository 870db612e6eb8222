import type { MachineConsole } from '../index.js';
import { GuestAgentSession } from '../../remote/index.js';
import { errorMessage } from '../../util/errors.js';
import { plainText } from '../../util/terminal.js';
import type { VmHost } from './vm-host.js';

/** Most journals quoted from one boot: the first failures explain the later ones. */
const MAX_JOURNALS = 3;
/** The end of each journal: the last attempts of a unit that was restarted. */
const JOURNAL_LINES = 20;
const AGENT_TIMEOUT_MS = 10_000;

/**
 * The journals of the units that failed in the machine's last boot, as the
 * examlab images print them on the console (examlab-unit-journal): each
 * between "examlab: UNIT failed; its journal:" and "examlab: end of the
 * journal of UNIT".
 */
export function failedUnitJournals(consoleText: string): { unit: string; journal: string }[] {
  const text = plainText(consoleText);
  const lastBoot = text.slice(Math.max(0, text.lastIndexOf('Linux version ')));
  const found: { unit: string; journal: string }[] = [];
  // The opening line may follow a prompt left without a newline ("vm login: examlab: ...").
  const block = /examlab: (\S+) failed; its journal:\n([\s\S]*?)^examlab: end of the journal of \1$/gm;
  for (let m = block.exec(lastBoot); m; m = block.exec(lastBoot)) {
    found.push({ unit: m[1] as string, journal: (m[2] as string).trimEnd().split('\n').slice(-JOURNAL_LINES).join('\n') });
  }
  return found.slice(0, MAX_JOURNALS);
}

/**
 * Why a VM did not let the grader in, in its own words: the journals of the
 * units that failed (from its console log, which needs nothing of the
 * guest), then what its guest agent says of sshd and of the jobs still
 * waiting (a unit that hangs fails nothing).
 */
export async function bootFailureReport(host: VmHost, machine: MachineConsole): Promise<string> {
  const parts: string[] = [];
  const text = (await host.readFile(machine.log).catch(() => undefined))?.toString('utf8') ?? '';
  for (const { unit, journal } of failedUnitJournals(text)) parts.push(`${unit} failed; its journal:\n${journal}`);
  if (machine.agent) parts.push(await agentView(host, machine.agent));
  return parts.join('\n');
}

async function agentView(host: VmHost, socket: string): Promise<string> {
  let session: GuestAgentSession | undefined;
  try {
    session = await GuestAgentSession.connect(socket, AGENT_TIMEOUT_MS, () => host.openSocket(socket, AGENT_TIMEOUT_MS));
    const { stdout } = await session.exec('systemctl status --no-pager --full --lines=10 ssh.service; echo; systemctl list-jobs --no-pager', { timeoutMs: AGENT_TIMEOUT_MS });
    return `its guest agent says:\n${stdout.trimEnd()}`;
  } catch (err) {
    return `its guest agent did not answer: ${errorMessage(err)}`;
  } finally {
    session?.close();
  }
}
