import { mkdirSync } from 'node:fs';
import { Level } from 'level';

export type Database = Level<string, string>;

/** The gateway's one embedded database; modules use their own sublevels of it. */
export async function openDatabase(path: string): Promise<Database> {
  mkdirSync(path, { recursive: true });
  const db = new Level<string, string>(path, { valueEncoding: 'utf8' });
  await db.open();
  return db;
}
