import { z } from 'zod';
import { defineKind, type Assertion } from '../check-kind.js';
import { assertFlag, assertMatch, fileText, obs, textOf } from '../assertions.js';
import { matcherSchema } from '../matchers.js';

interface Socket {
  address: string;
  port: number;
  state: string;
}

/** Parses /proc/net/{tcp,udp}[6]: the kernel's socket tables, not what `ss` prints. */
export function parseProcNet(table: string): Socket[] {
  const sockets: Socket[] = [];
  for (const line of table.split('\n')) {
    const cols = line.trim().split(/\s+/);
    const local = cols[1];
    const state = cols[3];
    if (!local || !state || !/^[0-9A-F]+:[0-9A-F]{4}$/i.test(local)) continue;
    const [hex = '', portHex = ''] = local.split(':');
    sockets.push({ address: hexToAddress(hex), port: parseInt(portHex, 16), state: state.toUpperCase() });
  }
  return sockets;
}

function hexToAddress(hex: string): string {
  // Each 32-bit word is in host (little-endian) order.
  const bytes: number[] = [];
  for (let w = 0; w < hex.length; w += 8) {
    const word = hex.slice(w, w + 8);
    for (let b = 6; b >= 0; b -= 2) bytes.push(parseInt(word.slice(b, b + 2), 16));
  }
  if (bytes.length === 4) return bytes.join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  const v6 = groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
  const mapped = /^::ffff:([0-9a-f]+):([0-9a-f]+)$/.exec(v6);
  if (mapped) {
    const hi = parseInt(mapped[1] as string, 16);
    const lo = parseInt(mapped[2] as string, 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return v6;
}

/** TCP LISTEN is state 0A; a bound UDP socket is 07. */
const LISTENING: Record<string, string> = { tcp: '0A', udp: '07' };

export const portKind = defineKind(
  'port',
  {
    port: z.number().int().min(1).max(65535),
    protocol: z.enum(['tcp', 'udp']).default('tcp'),
    listening: z.boolean().default(true),
    address: matcherSchema.optional().describe('Local address(es) listened on, e.g. "0.0.0.0" or { not: "127.0.0.1" }'),
  },
  {
    plan(check) {
      const t = check.protocol;
      return { machine: check.machine, probe: { v4: obs('read', `/proc/net/${t}`, 1 << 20), v6: obs('read', `/proc/net/${t}6`, 1 << 20) } };
    },
    evaluate(check, facts) {
      const v4 = textOf(facts, 'v4', `read /proc/net/${check.protocol}`);
      // No IPv6 on the machine: its table is absent, and nothing listens there.
      const v6 = fileText(facts, 'v6', `/proc/net/${check.protocol}6`) ?? '';
      const sockets = [...parseProcNet(v4), ...parseProcNet(v6)];
      const listeners = sockets.filter((s) => s.port === check.port && s.state === LISTENING[check.protocol]);
      const addresses = [...new Set(listeners.map((s) => s.address))];
      const label = `${check.protocol}/${check.port}`;
      const evidence = listeners.length ? `${label} bound on ${addresses.join(', ')}` : `nothing listens on ${label}`;
      const assertions: Assertion[] = [assertFlag('listening', check.listening, listeners.length > 0, listeners.length ? `listening on ${addresses.join(', ')}` : 'not listening')];
      if (check.address !== undefined && listeners.length) assertions.push(assertMatch('address', check.address, addresses));
      return { assertions, evidence };
    },
  },
);
