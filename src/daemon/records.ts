import type { LabRecord } from '../labs/index.js';
import { LabStore } from '../labs/lab-store.js';
import { openDatabase } from '../util/database.js';
import { storeFile, type Config } from './config.js';

/** The labs as the store has them, for a command that only reads them (`examlab lab ls`). */
export interface LabRecords {
  list(filter?: { includeDestroyed?: boolean }): LabRecord[];
  close(): void;
}

/**
 * Opens the store alone: no engine, service or logger is made, and the
 * modules of the labs' lifecycle (scenario parser, grading, SSH) are not
 * loaded, so that listing labs takes the time of a query.
 */
export function openLabRecords(config: Config): LabRecords {
  const db = openDatabase(storeFile(config));
  const store = new LabStore(db);
  return {
    list: (filter) => store.list(filter),
    close: () => db.close(),
  };
}
