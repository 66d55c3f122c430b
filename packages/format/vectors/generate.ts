/**
 * npm run vectors — rewrites packages/format/vectors/v1.json. Only needed when the
 * format changes (which means a new format version); vectors.test.ts checks the code
 * against the committed file. The sealed catalog is random by construction (an
 * ephemeral key), so it is made once here and the test checks that it opens.
 */
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { toHex } from '../src/bytes.js';
import { sealCatalogBytes } from '../src/catalog.js';
import { deriveKeys } from '../src/keys.js';
import { computeVectors, input, MASTER_KEY } from './compute.js';

const vectors = await computeVectors();
const keys = deriveKeys(MASTER_KEY);
const catalogPlain = input('kinvault vectors v1 catalog', 3000);
const catalog = {
  plaintext: toHex(catalogPlain),
  sealed: toHex(await sealCatalogBytes(keys.boxPublicKey, catalogPlain)),
};
// Written next to the sources (this file runs from dist/vectors/).
const out = fileURLToPath(new URL('../../vectors/v1.json', import.meta.url));
await writeFile(out, JSON.stringify({ ...vectors, catalog }, null, 1) + '\n');
console.log(`wrote ${out}`);
