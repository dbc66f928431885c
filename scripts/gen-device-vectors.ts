/** Writes firmware-bridge/test/vectors.json from the TypeScript implementation. */
import { writeFileSync } from 'node:fs';
import { buildVectors } from '../src/devices/vectors.js';

writeFileSync('firmware-bridge/test/vectors.json', JSON.stringify(buildVectors(), null, 2) + '\n');
process.stdout.write('wrote firmware-bridge/test/vectors.json\n');
