import tar from 'tar-stream';

export interface TarEntry {
  path: string;
  content?: string | Buffer;
  mode: number;
  type?: 'file' | 'directory';
}

/** An in-memory tar archive, for copying small files into a container before it starts. */
export async function tarOf(entries: readonly TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) {
    if (e.type === 'directory') pack.entry({ name: e.path, type: 'directory', mode: e.mode, uid: 0, gid: 0 });
    else pack.entry({ name: e.path, mode: e.mode, uid: 0, gid: 0 }, e.content ?? '');
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
