/** Why a candidate's sessions were cut: the page says it in the candidate's language. */
export type CutReason = 'time-up' | 'ended' | 'revoked' | 'reset';

interface Entry {
  close: (reason: CutReason) => void;
  /** A lab shell (counted as a live session), or a connection that merely holds the door (an SSH login). */
  counted: boolean;
}

/**
 * The candidates' live lab sessions, so that cutting a candidate's access
 * (freeze, revoke, reset, a new token) also ends what is already open; and
 * what the room view shows of them: how many are open, the last activity.
 */
export class SessionRegistry {
  private readonly sessions = new Map<string, Set<Entry>>();
  private readonly activity = new Map<string, number>();

  /** Registers an open session and how to close it; returns the function that forgets it. */
  register(examId: string, candidateId: string, close: (reason: CutReason) => void, options: { counted?: boolean } = {}): () => void {
    const key = `${examId}/${candidateId}`;
    const set = this.sessions.get(key) ?? new Set();
    const entry: Entry = { close, counted: options.counted ?? true };
    set.add(entry);
    this.sessions.set(key, set);
    this.touch(examId, candidateId);
    return () => {
      set.delete(entry);
      if (!set.size && this.sessions.get(key) === set) this.sessions.delete(key);
    };
  }

  /** Closes every open session of the candidate, lab shells first; returns how many there were. */
  cut(examId: string, candidateId: string, reason: CutReason = 'ended'): number {
    const set = this.sessions.get(`${examId}/${candidateId}`);
    if (!set) return 0;
    const entries = [...set].sort((a, b) => Number(b.counted) - Number(a.counted));
    this.sessions.delete(`${examId}/${candidateId}`);
    for (const entry of entries) entry.close(reason);
    return entries.length;
  }

  /** Something happened in one of the candidate's sessions (a keystroke, a login). */
  touch(examId: string, candidateId: string, at = Date.now()): void {
    this.activity.set(`${examId}/${candidateId}`, at);
  }

  /** Live lab shells of the candidate and their last activity, for the room view. */
  presence(examId: string, candidateId: string): { connected: number; lastActivityAt?: string } {
    const key = `${examId}/${candidateId}`;
    const last = this.activity.get(key);
    return { connected: this.open(examId, candidateId), lastActivityAt: last === undefined ? undefined : new Date(last).toISOString() };
  }

  /** Live lab shells of the candidate. */
  open(examId: string, candidateId: string): number {
    let n = 0;
    for (const entry of this.sessions.get(`${examId}/${candidateId}`) ?? []) if (entry.counted) n++;
    return n;
  }

  total(): number {
    let n = 0;
    for (const set of this.sessions.values()) for (const entry of set) if (entry.counted) n++;
    return n;
  }

  closeAll(): void {
    for (const key of [...this.sessions.keys()]) {
      const [examId, candidateId] = key.split('/') as [string, string];
      this.cut(examId, candidateId);
    }
  }
}
