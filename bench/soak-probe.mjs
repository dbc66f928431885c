// Preloaded (`node --expose-gc --import`) into the gateway the soak benchmark measures; never
// part of the gateway itself. On SIGUSR2: two full GCs, then process.memoryUsage() as JSON to
// $COULOMB_SOAK_PROBE_FILE, with the resident set's anonymous and file-backed parts, (written to a temporary name and renamed, so a reader never sees half).
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import process from 'node:process';

const file = process.env['COULOMB_SOAK_PROBE_FILE'];
if (file && typeof globalThis.gc === 'function') {
  const gc = globalThis.gc;
  process.on('SIGUSR2', () => {
    gc();
    gc();
    // The kernel's split of the resident set: anonymous (heap, native allocations) and
    // file-backed (mapped files: LevelDB's table files are read through mmap).
    const status = readFileSync('/proc/self/status', 'utf8');
    const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    const split = { rssAnon: kb('RssAnon') * 1024, rssFile: kb('RssFile') * 1024 };
    writeFileSync(`${file}.tmp`, JSON.stringify({ ...process.memoryUsage(), ...split }));
    renameSync(`${file}.tmp`, file);
  });
}
