/**
 * The candidates' live lab sessions, so that cutting a candidate's access
 * (freeze, revoke, reset, a new token) also ends what is already open.
 */
export class SessionRegistry {
  private readonly sessions = new Map<string, Set<() => void>>();

  /** Registers an open session and how to close it; returns the function that forgets it. */
  register(examId: string, candidateId: string, close: () => void): () => void {
    const key = `${examId}/${candidateId}`;
    const set = this.sessions.get(key) ?? new Set();
    set.add(close);
    this.sessions.set(key, set);
    return () => {
      set.delete(close);
      if (!set.size) this.sessions.delete(key);
    };
  }

  /** Closes every open session of the candidate; returns how many there were. */
  cut(examId: string, candidateId: string): number {
    const set = this.sessions.get(`${examId}/${candidateId}`);
    if (!set) return 0;
    const closers = [...set];
    this.sessions.delete(`${examId}/${candidateId}`);
    for (const close of closers) close();
    return closers.length;
  }

  open(examId: string, candidateId: string): number {
    return this.sessions.get(`${examId}/${candidateId}`)?.size ?? 0;
  }

  total(): number {
    let n = 0;
    for (const set of this.sessions.values()) n += set.size;
    return n;
  }

  closeAll(): void {
    for (const key of [...this.sessions.keys()]) {
      const [examId, candidateId] = key.split('/') as [string, string];
      this.cut(examId, candidateId);
    }
  }
}
