/**
 * `{{ name }}` placeholders in text. Names are scenario variables
 * (`{{ user }}`), facts of the lab (`{{ machines.srv.ip }}`) or the
 * candidate's roster entry (`{{ candidate.name }}`: free text, untrusted).
 *
 * A value is always inserted as its literal text for the place it lands in
 * (the `context` of the field): in a shell script it is one piece of data
 * whatever quoting surrounds the placeholder, in a regular expression it
 * matches itself only, in a path it is one file name. Values made only of
 * characters that mean nothing there are inserted unchanged, so the
 * scenarios written before escaping render byte for byte as they did.
 */
import { InputError } from './errors.js';

const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}/g;

/** Where a text lands: decides how each value is escaped. */
export type TextContext = 'text' | 'sh' | 'powershell' | 'regex' | 'path';

export interface Placeholder {
  name: string;
  /** Offset of `{{` in the text. */
  index: number;
}

export function findPlaceholders(text: string): Placeholder[] {
  return [...text.matchAll(PLACEHOLDER)].map((m) => ({ name: m[1] as string, index: m.index }));
}

/**
 * Fills in the placeholders of `text`, each value escaped for `context`.
 * `where` (such as `checks[2].run`) names the field in errors.
 */
export function renderText(text: string, values: ReadonlyMap<string, string>, context: TextContext = 'text', where = 'text'): string {
  const found = [...text.matchAll(PLACEHOLDER)];
  if (!found.length) return text;
  const states = context === 'sh' ? shellStates(text, found) : context === 'powershell' ? powershellStates(text, found) : undefined;
  let out = '';
  let last = 0;
  const inHeredoc: { at: number; doc: HereDoc; place: Place }[] = [];
  found.forEach((m, i) => {
    const name = m[1] as string;
    const value = values.get(name);
    if (value === undefined) throw new Error(`no value for {{ ${name} }}`);
    const place = { name, value, where };
    out += text.slice(last, m.index);
    const doc = context === 'sh' ? (states as ReturnType<typeof shellStates>).docs?.[i] : undefined;
    if (doc) inHeredoc.push({ at: out.length, doc, place });
    out += context === 'sh' ? shellValue(place, states?.[i] as string) : context === 'powershell' ? powershellValue(place, states?.[i] as string) : context === 'regex' ? regexLiteral(value) : context === 'path' ? pathPart(place) : value;
    last = m.index + m[0].length;
  });
  out += text.slice(last);
  // A value must not make its line the here-document's delimiter (a candidate named "EOF" would end it early).
  for (const { at, doc, place } of inHeredoc) {
    const line = out.slice(out.lastIndexOf('\n', at - 1) + 1, out.indexOf('\n', at) === -1 ? out.length : out.indexOf('\n', at));
    const body = doc.strip ? line.replace(/^\t+/, '') : line;
    if (body === doc.delim) refuse(place, `would make its line "${doc.delim}", the end of the here-document it is placed in`);
    // dash (Debian's /bin/sh, 0.5.12) compares each line with the delimiter and, where the line starts like it and then
    // goes on with a non-ASCII character, drops a byte of that character: "E" + "ş" under <<EOF reads as "E" and a stray byte.
    const differs = [...doc.delim].findIndex((c, k) => body[k] !== c);
    const same = differs === -1 ? doc.delim.length : differs;
    if (same > 0 && (body.codePointAt(same) ?? 0) >= 0x80) {
      refuse(place, `would start its line with "${body.slice(0, same)}" (as the here-document's end "${doc.delim}" starts) followed by a non-ASCII character, of which dash (Debian's /bin/sh) drops a byte: put other text first on the line, or write the value with printf '%s\\n'`);
    }
  }
  return out;
}

/** Renders every string inside a JSON-like value as plain text (no escaping): for display only. */
export function renderDeep<T>(value: T, values: ReadonlyMap<string, string>): T {
  if (typeof value === 'string') return renderText(value, values) as T;
  if (Array.isArray(value)) return value.map((v) => renderDeep(v, values)) as T;
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, renderDeep(v, values)])) as T;
  }
  return value;
}

interface Place {
  name: string;
  value: string;
  where: string;
}

function refuse(place: Place, why: string): never {
  const message = `{{ ${place.name} }} is ${JSON.stringify(place.value)}, which ${why}`;
  throw new InputError(`${place.where}: ${message}`, [{ where: place.where, message }]);
}

/** A regular expression that matches the value's text and nothing else. */
export function regexLiteral(value: string): string {
  return value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** One file name: never a separator, never `.` or `..`, never empty. */
function pathPart(place: Place): string {
  const { value } = place;
  if (value === '' || value === '.' || value === '..') refuse(place, 'cannot be a file name in a path (empty, "." or "..")');
  if (/[/\\\0\n\r]/.test(value)) refuse(place, 'cannot be part of a path: a value is one file name, without "/", "\\" or line breaks');
  return value;
}

// ---------------------------------------------------------------------------
// POSIX shell (sh, bash): where in the script's quoting each placeholder is.

interface HereDoc {
  delim: string;
  strip: boolean;
}

/** Characters that are plain data in every unquoted position of a word. */
const PLAIN_WORD = /^[A-Za-z0-9_.,:/@%+-]+$/;

/**
 * The quoting state at each placeholder of a shell script: `top` (unquoted),
 * `single` ('…'), `ansi` ($'…'), `double` ("…"), `backtick` (`…`),
 * `heredoc` (a here-document whose body expands), `qheredoc` (one that does
 * not), `comment`, or `escaped` (right after a backslash). Placeholders are
 * read as plain word characters; `$(…)` and `${…}` nest.
 */
export function shellStates(text: string, found: RegExpMatchArray[]): string[] & { docs?: (HereDoc | undefined)[] } {
  // Each placeholder becomes plain characters of the same length, so offsets stay.
  let masked = text;
  for (const m of found) masked = masked.slice(0, m.index) + 'x'.repeat(m[0].length) + masked.slice((m.index as number) + m[0].length);
  const wanted = new Map<number, number>(found.map((m, i) => [m.index as number, i]));
  const states: string[] & { docs?: (HereDoc | undefined)[] } = new Array(found.length).fill('top');
  const docs: (HereDoc | undefined)[] = new Array(found.length).fill(undefined);
  states.docs = docs;
  const stack: string[] = ['top'];
  const pending: { delim: string; quoted: boolean; strip: boolean }[] = [];
  const heredocs: HereDoc[] = [];
  let comment = false;
  const top = () => stack[stack.length - 1] as string;
  const record = (from: number, to: number, state: string) => {
    for (let p = from; p < to; p++) if (wanted.has(p)) states[wanted.get(p) as number] = state;
  };
  const startBody = () => {
    const next = pending.shift();
    if (!next) return;
    stack.push(next.quoted ? 'qheredoc' : 'heredoc');
    heredocs.push(next);
  };
  let i = 0;
  while (i < masked.length) {
    const c = masked[i] as string;
    const two = masked.slice(i, i + 2);
    const frame = top();
    if (wanted.has(i)) {
      states[wanted.get(i) as number] = comment ? 'comment' : frame;
      if (frame === 'heredoc' || frame === 'qheredoc') docs[wanted.get(i) as number] = heredocs[heredocs.length - 1];
    }
    // A here-document's body: each line may be its delimiter.
    if ((frame === 'heredoc' || frame === 'qheredoc') && (i === 0 || masked[i - 1] === '\n')) {
      const end = masked.indexOf('\n', i) === -1 ? masked.length : masked.indexOf('\n', i);
      const doc = heredocs[heredocs.length - 1] as HereDoc;
      const line = masked.slice(i, end);
      if ((doc.strip ? line.replace(/^\t+/, '') : line) === doc.delim) {
        record(i, end, frame);
        stack.pop();
        heredocs.pop();
        i = end + 1;
        startBody();
        continue;
      }
    }
    if (comment) {
      if (c !== '\n') {
        i++;
        continue;
      }
      comment = false; // the line break itself may start a here-document's body
    }
    if (frame === 'single') {
      if (c === "'") stack.pop();
      i++;
      continue;
    }
    if (frame === 'qheredoc') {
      i++;
      continue;
    }
    if (c === '\\') {
      record(i + 1, i + 2, 'escaped');
      i += 2;
      continue;
    }
    if (frame === 'ansi') {
      if (c === "'") stack.pop();
      i++;
      continue;
    }
    if (two === '$(') {
      stack.push('paren');
      i += 2;
      continue;
    }
    if (two === '${') {
      stack.push(frame === 'double' || frame === 'dbrace' || frame === 'heredoc' ? 'dbrace' : 'brace');
      i += 2;
      continue;
    }
    if (c === '`') {
      if (frame === 'backtick') stack.pop();
      else stack.push('backtick');
      i++;
      continue;
    }
    if (frame === 'heredoc') {
      i++;
      continue;
    }
    if (frame === 'double' || frame === 'dbrace') {
      if (c === '"') {
        if (frame === 'double') stack.pop();
        else stack.push('double');
      } else if (c === '}' && frame === 'dbrace') stack.pop();
      i++;
      continue;
    }
    // Unquoted: top, paren, brace, backtick.
    if (c === "'") stack.push('single');
    else if (two === "$'") {
      stack.push('ansi');
      i += 2;
      continue;
    } else if (c === '"') stack.push('double');
    else if (c === '(') stack.push('paren');
    else if (c === ')') {
      if (frame === 'paren') stack.pop();
    } else if (c === '}') {
      if (frame === 'brace') stack.pop();
    } else if (c === '#' && (i === 0 || /[\s;&|()<>]/.test(masked[i - 1] as string))) comment = true;
    else if (two === '<<' && masked[i + 2] !== '<') {
      const op = /^<<(-?)[ \t]*((?:[^\s;&|<>()'"\\]|'[^']*'|"[^"]*"|\\.)+)/.exec(masked.slice(i));
      if (op) {
        const word = op[2] as string;
        pending.push({ delim: word.replace(/['"\\]/g, ''), quoted: /['"\\]/.test(word), strip: op[1] === '-' });
        record(i, i + op[0].length, 'escaped'); // a placeholder in a delimiter must be plain
        i += op[0].length;
        continue;
      }
    } else if (c === '\n' && pending.length) {
      i++;
      startBody();
      continue;
    }
    i++;
  }
  return states;
}

function shellValue(place: Place, state: string): string {
  const { value } = place;
  if (value.includes('\0')) refuse(place, 'contains a NUL character, which no shell script can hold');
  switch (state) {
    case 'single':
      return value.replace(/'/g, `'\\''`);
    case 'ansi':
      return value.replace(/[\\']/g, '\\$&');
    case 'double':
      return value.replace(/[$`"\\]/g, '\\$&');
    case 'heredoc':
      if (/[\n\r]/.test(value)) refuse(place, 'has a line break, which could end the here-document it is placed in');
      return value.replace(/[$`\\]/g, '\\$&');
    case 'qheredoc':
    case 'comment':
      if (/[\n\r]/.test(value)) refuse(place, `has a line break, which would end the ${state === 'comment' ? 'comment' : 'here-document'} it is placed in`);
      return value;
    case 'backtick':
    case 'brace':
    case 'dbrace':
    case 'escaped':
      // Shells disagree on quotes inside `…` and ${…} (bash reads ' in "${x:-…}", dash does not): only plain values go there.
      if (PLAIN_WORD.test(value)) return value;
      return refuse(place, state === 'backtick' ? 'cannot be quoted inside `…`: use $(…) instead' : state === 'escaped' ? 'cannot be quoted right after a backslash or in a here-document delimiter' : 'cannot be quoted inside ${…}: set a variable first (x={{ … }}) and use "${y:-$x}"');
    default:
      // Unquoted (top level, $(…), (…), ${…}): one shell word.
      return PLAIN_WORD.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
  }
}

// ---------------------------------------------------------------------------
// PowerShell: '…' (quotes doubled), "…" (backtick escapes), here-strings, comments.

const PS_SINGLE_QUOTES = /['\u2018\u2019\u201A\u201B]/g;
const PS_SINGLE_QUOTE = /^['\u2018\u2019\u201A\u201B]$/;
/** Plain in PowerShell: no operator (`,`, `@`, `%`, `$`), no quote. */
const PS_PLAIN = /^[A-Za-z0-9_.:/-]+$/;
const PS_DOUBLE_SPECIAL = /[`$"\u201C\u201D\u201E]/g;

export function powershellStates(text: string, found: RegExpMatchArray[]): string[] {
  let masked = text;
  for (const m of found) masked = masked.slice(0, m.index) + 'x'.repeat(m[0].length) + masked.slice((m.index as number) + m[0].length);
  const wanted = new Map<number, number>(found.map((m, i) => [m.index as number, i]));
  const states: string[] = new Array(found.length).fill('top');
  const stack: string[] = ['top'];
  let i = 0;
  while (i < masked.length) {
    const c = masked[i] as string;
    const frame = stack[stack.length - 1] as string;
    if (wanted.has(i)) states[wanted.get(i) as number] = frame;
    if (frame === 'comment') {
      if (c === '\n') stack.pop();
      i++;
    } else if (frame === 'block') {
      if (masked.startsWith('#>', i)) stack.pop();
      i += masked.startsWith('#>', i) ? 2 : 1;
    } else if (frame === 'single') {
      if (PS_SINGLE_QUOTE.test(c)) {
        if (PS_SINGLE_QUOTE.test(masked[i + 1] ?? '')) i += 2;
        else {
          stack.pop();
          i++;
        }
      } else i++;
    } else if (frame === 'here' || frame === 'qhere') {
      if ((i === 0 || masked[i - 1] === '\n') && masked.startsWith(frame === 'here' ? '"@' : "'@", i)) {
        stack.pop();
        i += 2;
      } else if (frame === 'here' && masked.startsWith('$(', i)) {
        stack.push('paren');
        i += 2;
      } else i += frame === 'here' && c === '`' ? 2 : 1;
    } else if (frame === 'double') {
      if (c === '`') i += 2;
      else if (masked.startsWith('$(', i)) {
        stack.push('paren');
        i += 2;
      } else {
        if (/["\u201C\u201D\u201E]/.test(c)) {
          if (/["\u201C\u201D\u201E]/.test(masked[i + 1] ?? '')) i++;
          else stack.pop();
        }
        i++;
      }
    } else {
      // Unquoted: top or a (…) / $(…) subexpression.
      if (masked.startsWith('@"\n', i) || masked.startsWith('@"\r\n', i)) {
        stack.push('here');
        i += 2;
      } else if (masked.startsWith("@'\n", i) || masked.startsWith("@'\r\n", i)) {
        stack.push('qhere');
        i += 2;
      } else if (masked.startsWith('<#', i)) {
        stack.push('block');
        i += 2;
      } else {
        if (c === '#') stack.push('comment');
        else if (PS_SINGLE_QUOTE.test(c)) stack.push('single');
        else if (/["\u201C\u201D\u201E]/.test(c)) stack.push('double');
        else if (c === '(') stack.push('paren');
        else if (c === ')' && frame === 'paren') stack.pop();
        else if (c === '`') {
          if (wanted.has(i + 1)) states[wanted.get(i + 1) as number] = 'escaped';
          i++;
        }
        i++;
      }
    }
  }
  return states;
}

function powershellValue(place: Place, state: string): string {
  const { value } = place;
  if (value.includes('\0')) refuse(place, 'contains a NUL character, which no script can hold');
  switch (state) {
    case 'single':
      return value.replace(PS_SINGLE_QUOTES, '$&$&');
    case 'double':
      return value.replace(PS_DOUBLE_SPECIAL, '`$&');
    case 'here':
    case 'qhere':
      // A line that starts with "@ or '@ ends a here-string: no line break, no @ from a value.
      if (/[\n\r@]/.test(value)) refuse(place, 'has a line break or "@", which could end the here-string it is placed in');
      return state === 'here' ? value.replace(/[`$"\u201C\u201D\u201E]/g, '`$&') : value;
    case 'comment':
      if (/[\n\r]/.test(value)) refuse(place, 'has a line break, which would end the text it is placed in');
      return value;
    case 'block':
      if (value.includes('#>')) refuse(place, 'contains "#>", which would end the comment it is placed in');
      return value;
    case 'escaped':
      if (PS_PLAIN.test(value)) return value;
      return refuse(place, 'cannot be quoted right after a backtick');
    default:
      return PS_PLAIN.test(value) ? value : `'${value.replace(PS_SINGLE_QUOTES, '$&$&')}'`;
  }
}
