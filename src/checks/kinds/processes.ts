/** Process listings from the probe, shared by the process and service kinds. */

export interface ProbeProcess {
  pid: number;
  ppid: number;
  uid: number;
  comm: string;
  /** The kernel's answer to which file runs (/proc/PID/exe); empty when it cannot be read. */
  exe: string;
  cgroup: string;
  cmdline: string;
}

type Column = keyof ProbeProcess;

/** Tab-separated lines, one process each, with these columns in this order. */
export function parseProcessLines(text: string, columns: readonly Column[]): ProbeProcess[] {
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const fields = line.split('\t');
      const p: ProbeProcess = { pid: 0, ppid: 0, uid: -1, comm: '', exe: '', cgroup: '', cmdline: '' };
      columns.forEach((column, i) => {
        const value = fields[i] ?? '';
        if (column === 'pid' || column === 'ppid' || column === 'uid') p[column] = Number(value);
        else p[column] = value;
      });
      return p;
    });
}

/**
 * The paths an executable is known by: the kernel's own, without the mark of a
 * file replaced since it started, and its merged-/usr aliases (/sbin is /usr/sbin).
 */
export function executablePaths(exe: string): string[] {
  const path = exe.replace(/ \(deleted\)$/, '');
  const short = path.replace(/^\/usr\/(s?bin|lib)\//, '/$1/');
  const long = short.replace(/^\/(s?bin|lib)\//, '/usr/$1/');
  return [...new Set([path, short, long])];
}

/** The same program, allowing for merged /usr. */
export function sameExecutable(a: string, b: string): boolean {
  if (!a || !b) return false;
  const known = executablePaths(b);
  return executablePaths(a).some((p) => known.includes(p));
}
