import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { openReference, sealReference } from './aead.js';
import { blobId, BlobType } from './blob.js';
import { fromHex, toHex } from './bytes.js';
import { openCatalogBytes } from './catalog.js';
import { chunkStream, prepareChunker } from './chunker.js';
import { openKeyFile } from './keyfile.js';
import { deriveKeys, gearTable } from './keys.js';
import { PACK_HEADER_AD } from './pack.js';
import { SNAPSHOT_AD } from './snapshot.js';
import { decodeTree, encodeTree } from './tree.js';
import { sodium } from './sodium.js';
import { computeVectors, input, MASTER_KEY, type Vectors } from '../vectors/compute.js';

const committed = JSON.parse(
  readFileSync(new URL('../vectors/v1.json', import.meta.url), 'utf8'),
) as Vectors & {
  catalog: { plaintext: string; sealed: string };
};
const keys = deriveKeys(MASTER_KEY);

describe('known-answer vectors (vectors/v1.json)', () => {
  it('are reproduced exactly by this code', async () => {
    const { catalog: _catalog, ...rest } = committed;
    // JSON round trip: the committed file has no bigint or typed array.
    expect(JSON.parse(JSON.stringify(await computeVectors()))).toEqual(rest);
  });

  it('seal identically through libsodium (the reference path) and the native fast path', () => {
    for (const v of committed.blobs) {
      const key = v.type === BlobType.data ? keys.dataKey : keys.metadataKey;
      const sealed = sealReference(key, fromHex(v.nonce), fromHex(v.plaintext), fromHex(v.id));
      expect(toHex(sealed)).toBe(v.sealed);
      expect(toHex(blobId(keys, v.type as BlobType, fromHex(v.plaintext)))).toBe(v.id);
    }
    const snapshot = fromHex(committed.snapshot.sealed);
    expect(toHex(openReference(keys.metadataKey, snapshot, SNAPSHOT_AD))).toBe(
      committed.snapshot.plaintext,
    );
    // The last 512 bytes of the pack hold the whole sealed header and the trailer.
    const tail = fromHex(committed.pack.tail);
    const headerLength = new DataView(tail.buffer, tail.byteOffset).getUint32(
      tail.byteLength - 16,
      true,
    );
    const sealedHeader = tail.subarray(tail.byteLength - 16 - headerLength, tail.byteLength - 16);
    expect(toHex(openReference(keys.metadataKey, sealedHeader, PACK_HEADER_AD))).toBe(
      committed.pack.headerPlaintext,
    );
  });

  it('hold a key-file replacement signature that the household public key verifies', () => {
    const v = committed.keyFileReplacement;
    const ok = sodium.crypto_sign_verify_detached(
      fromHex(v.signature),
      fromHex(v.message),
      fromHex(committed.subkeys.signPublicKey),
    );
    expect(ok).toBe(true);
  });

  it('chunk the same way when streamed through the WebAssembly scanner', async () => {
    const gear = gearTable(keys.cdcSeed);
    for (const which of ['small', 'default'] as const) {
      const v = committed.chunks[which];
      const data = input(committed.inputs[which].label, committed.inputs[which].length);
      const pieces = [data.subarray(0, 1234567), data.subarray(1234567)];
      const got: [number, number][] = [];
      for await (const c of chunkStream(pieces, prepareChunker(gear, v.params)))
        got.push([c.offset, c.data.byteLength]);
      expect(got).toEqual(v.chunks.map((c) => [c.offset, c.length]));
    }
  });

  it('decode the tree canonically and open both key files and the sealed catalog', async () => {
    const tree = fromHex(committed.tree.encoded);
    expect(toHex(encodeTree(decodeTree(tree)))).toBe(committed.tree.encoded);
    const k = committed.keyFiles;
    expect(openKeyFile(fromHex(k.passphraseFile), { passphrase: k.passphrase }).masterKey).toEqual(
      MASTER_KEY,
    );
    expect(
      openKeyFile(fromHex(k.recoveryFile), { recoveryCode: k.recoveryCode }).masterKey,
    ).toEqual(MASTER_KEY);
    const plain = await openCatalogBytes(
      keys.boxPublicKey,
      keys.boxSecretKey,
      fromHex(committed.catalog.sealed),
    );
    expect(toHex(plain)).toBe(committed.catalog.plaintext);
  });
});
