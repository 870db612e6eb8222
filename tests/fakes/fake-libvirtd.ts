import type { LibvirtHandle } from '../../src/providers/libvirt/connection.js';

/**
 * libvirtd as the binding (@unraid/libvirt) sees it, with the messages the
 * real one gives: it can be restarted (every connection opened before is
 * dead: "Cannot write data: Broken pipe", then "client socket is closed"),
 * stopped (an open fails) or hung (calls wait until it is resumed, or
 * rejected when it is then killed). It counts the native calls out at once.
 */
export class FakeLibvirtd {
  state: 'up' | 'down' | 'hung' = 'up';
  readonly domains = new Set<string>(['exl-lab1-vm']);
  /** Every binding object made, in order (one per connection). */
  readonly handles: FakeHandle[] = [];
  /** Domains defined, in order. */
  readonly defined: string[] = [];
  inFlight = 0;
  maxInFlight = 0;
  /** Bumped at each start: a connection of an earlier one is dead. */
  private run = 1;
  private readonly waiting: { resolve: () => void; reject: (err: Error) => void }[] = [];

  /** The binding object factory, as the provider passes it. */
  readonly handle = (): FakeHandle => {
    const handle = new FakeHandle(this);
    this.handles.push(handle);
    return handle;
  };

  /** Killed: calls waiting on it fail, connections die, opens are refused. */
  stop(): void {
    this.state = 'down';
    this.run++;
    for (const w of this.waiting.splice(0)) w.reject(new Error('End of file while reading data: Input/output error'));
  }

  start(): void {
    this.state = 'up';
  }

  restart(): void {
    this.stop();
    this.start();
  }

  /** Stopped (SIGSTOP): calls and opens wait. */
  hang(): void {
    this.state = 'hung';
  }

  /** Continued (SIGCONT): what waited is answered. */
  resume(): void {
    this.state = 'up';
    for (const w of this.waiting.splice(0)) w.resolve();
  }

  async open(): Promise<number> {
    if (this.state === 'down') throw new Error("Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory");
    return this.native(() => this.run);
  }

  /** One native call on a connection of run `run`. */
  async call<T>(handle: FakeHandle, answer: () => T): Promise<T> {
    if (handle.run === undefined) throw new Error('invalid connection pointer in virConnect');
    if (handle.run !== this.run || handle.closed) throw new Error(handle.failures++ ? 'internal error: client socket is closed' : 'Cannot write data: Broken pipe');
    return this.native(answer);
  }

  private async native<T>(answer: () => T): Promise<T> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.state === 'hung') await new Promise<void>((resolve, reject) => this.waiting.push({ resolve, reject }));
      return answer();
    } finally {
      this.inFlight--;
    }
  }
}

/** One binding object: one connection, once opened. */
export class FakeHandle implements LibvirtHandle {
  /** The libvirtd run it is connected to. */
  run?: number;
  closed = false;
  failures = 0;

  constructor(private readonly daemon: FakeLibvirtd) {}

  async connectOpen(): Promise<void> {
    this.run = await this.daemon.open();
  }

  async connectClose(): Promise<void> {
    this.closed = true;
  }

  connectGetHostname(): Promise<string> {
    return this.daemon.call(this, () => 'host');
  }

  domainLookupByName(name: string): Promise<string> {
    return this.daemon.call(this, () => {
      if (!this.daemon.domains.has(name)) throw new Error(`Domain not found: no domain with matching name '${name}'`);
      return name;
    });
  }

  domainDefineXML(name: string): Promise<string> {
    return this.daemon.call(this, () => {
      this.daemon.defined.push(name);
      this.daemon.domains.add(name);
      return name;
    });
  }
}
