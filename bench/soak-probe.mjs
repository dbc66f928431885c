// Preloaded (`node --expose-gc --import`) into the gateway the soak benchmark measures; never
// part of the gateway itself. On SIGUSR2: two full GCs, then process.memoryUsage() as JSON to
// $COULOMB_SOAK_PROBE_FILE (written to a temporary name and renamed, so a reader never sees half).
import { renameSync, writeFileSync } from 'node:fs';
import process from 'node:process';

const file = process.env['COULOMB_SOAK_PROBE_FILE'];
if (file && typeof globalThis.gc === 'function') {
  const gc = globalThis.gc;
  process.on('SIGUSR2', () => {
    gc();
    gc();
    writeFileSync(`${file}.tmp`, JSON.stringify(process.memoryUsage()));
    renameSync(`${file}.tmp`, file);
  });
}
