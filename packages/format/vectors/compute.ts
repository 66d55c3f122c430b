/**
 * Known-answer vectors for format v1. Everything here is deterministic: the master key
 * is the bytes 0x00..0x1f, and every other input or nonce comes from
 * `deterministicRandom(label)` (the ChaCha20 keystream under SHA-256(label), zero
 * nonce, counter 0), so an independent implementation can regenerate the same inputs.
 */
import { createHash } from 'node:crypto';
import { blobId, BlobType, sealBlob } from '../src/blob.js';
import { toHex } from '../src/bytes.js';
import {
  chunkBuffer,
  DEFAULT_CHUNKER_PARAMS,
  prepareChunker,
  type ChunkerParams,
} from '../src/chunker.js';
import { createKeyFile, KeyFileKind } from '../src/keyfile.js';
import { keyFileReplacementMessage, signKeyFileReplacement } from '../src/keyfile-replacement.js';
import { deriveKeys, gearTable } from '../src/keys.js';
import { buildPack, encodePackHeader } from '../src/pack.js';
import { deterministicRandom } from '../src/random.js';
import { formatRecoveryCode } from '../src/recovery-code.js';
import { encodeSnapshot, sealSnapshot, type Snapshot } from '../src/snapshot.js';
import { encodeTree, sortNodes, type TreeNode } from '../src/tree.js';

export const MASTER_KEY = Uint8Array.from({ length: 32 }, (_, i) => i);
export const SMALL_CHUNKER: ChunkerParams = { minSize: 4096, avgSize: 16384, maxSize: 65536 };
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

export function input(label: string, length: number): Uint8Array {
  return deterministicRandom(label)(length);
}

function chunkList(data: Uint8Array, params: ChunkerParams, keys: ReturnType<typeof deriveKeys>) {
  const chunker = prepareChunker(gearTable(keys.cdcSeed), params);
  return chunkBuffer(data, chunker).map((c) => ({
    offset: c.offset,
    length: c.data.byteLength,
    id: toHex(blobId(keys, BlobType.data, c.data)),
  }));
}

export async function computeVectors() {
  const keys = deriveKeys(MASTER_KEY);
  const gear = gearTable(keys.cdcSeed);
  const gearBytes = new Uint8Array(gear.buffer.slice(0));

  const smallInput = input('kinvault vectors v1 small input', 1024 * 1024);
  const defaultInput = input('kinvault vectors v1 default input', 16 * 1024 * 1024);

  const nonces = deterministicRandom('kinvault vectors v1 nonces');
  const blobs = [
    { type: BlobType.data, plaintext: new Uint8Array(0) },
    { type: BlobType.data, plaintext: new TextEncoder().encode('hello kinvault') },
    { type: BlobType.tree, plaintext: input('kinvault vectors v1 tree-typed blob', 100) },
  ].map(({ type, plaintext }) => {
    const id = blobId(keys, type, plaintext);
    const nonce = nonces(24);
    const sealed = sealBlob(keys, type, id, plaintext, () => nonce);
    return {
      type,
      plaintext: toHex(plaintext),
      nonce: toHex(nonce),
      id: toHex(id),
      sealed: toHex(sealed),
    };
  });

  // A pack of the first five chunks of the small input and one tree.
  const chunker = prepareChunker(gear, SMALL_CHUNKER);
  const packChunks = chunkBuffer(smallInput, chunker).slice(0, 5);
  const fileNode = (name: string, chunks: Uint8Array[], size: number): TreeNode => ({
    kind: 'file',
    name,
    mode: 0o644,
    mtimeNs: 1_700_000_000_123_456_789n,
    ctimeNs: 1_700_000_001_000_000_000n,
    inode: 4242n,
    uid: 1000,
    gid: 1000,
    size,
    chunks,
  });
  const chunkIds = packChunks.map((c) => blobId(keys, BlobType.data, c.data));
  const tree = {
    nodes: sortNodes([
      fileNode(
        'photo.jpg',
        chunkIds,
        packChunks.reduce((s, c) => s + c.data.byteLength, 0),
      ),
      fileNode('empty.txt', [], 0),
      {
        kind: 'symlink',
        name: 'latest',
        mode: 0o777,
        mtimeNs: 1_700_000_002_000_000_000n,
        ctimeNs: 1_700_000_002_000_000_000n,
        inode: 7n,
        uid: 1000,
        gid: 1000,
        target: 'photo.jpg',
      },
      {
        kind: 'dir',
        name: 'Vacances été',
        mode: 0o755,
        mtimeNs: -1_000_000_000n,
        ctimeNs: 0n,
        inode: 9n,
        uid: 0,
        gid: 0,
        subtree: new Uint8Array(32).fill(0xab),
      },
    ]),
  };
  const treeBytes = encodeTree(tree);
  const treeId = blobId(keys, BlobType.tree, treeBytes);
  const packBlobs = [
    ...packChunks.map((c, i) => ({ type: BlobType.data, id: chunkIds[i]!, plaintext: c.data })),
    { type: BlobType.tree, id: treeId, plaintext: treeBytes },
  ].map((b) => ({ ...b, sealed: sealBlob(keys, b.type, b.id, b.plaintext, nonces) }));
  const { bytes: packBytes, info } = await buildPack(keys, packBlobs, nonces);

  const snapshot: Snapshot = {
    startNs: 1_700_000_100_000_000_000n,
    endNs: 1_700_000_160_500_000_000n,
    tree: treeId,
    parent: null,
    hostname: 'nas',
    device: 'family-nas',
    paths: ['/srv/photos'],
    tags: [],
    partial: false,
    errors: [],
    stats: { files: 2, dirs: 1, bytes: info.size, filesNew: 2, bytesNew: info.size },
  };
  const sealedSnapshot = sealSnapshot(keys, snapshot, nonces);

  const repositoryId = input('kinvault vectors v1 repository id', 16);
  const kdf = { opslimit: 1, memlimit: 8 * 1024 * 1024 };
  const passphrase = 'correct horse battery staple';
  const keyFile = createKeyFile(
    MASTER_KEY,
    repositoryId,
    { passphrase },
    { kdf, allowWeakKdf: true, random: nonces },
  );
  const recoveryEntropy = input('kinvault vectors v1 recovery entropy', 16);
  const recoveryCode = formatRecoveryCode(recoveryEntropy);
  const recoveryFile = createKeyFile(
    MASTER_KEY,
    repositoryId,
    { recoveryCode },
    { kdf, allowWeakKdf: true, random: nonces },
  );

  const replacement = {
    repositoryId,
    kind: KeyFileKind.passphrase,
    generation: 0,
    current: keyFile,
    next: recoveryFile,
  };
  const replacementMessage = keyFileReplacementMessage(replacement);

  return {
    format: 'Kinvault repository format v1 — known-answer vectors (see docs/design.md)',
    masterKey: toHex(MASTER_KEY),
    subkeys: {
      idKey: toHex(keys.idKey),
      dataKey: toHex(keys.dataKey),
      metadataKey: toHex(keys.metadataKey),
      cdcSeed: toHex(keys.cdcSeed),
      boxPublicKey: toHex(keys.boxPublicKey),
      boxSecretKey: toHex(keys.boxSecretKey),
      signPublicKey: toHex(keys.signPublicKey),
      signSecretKey: toHex(keys.signSecretKey),
    },
    gearTable: { first8: Array.from(gear.subarray(0, 8)), sha256OfTableBytes: sha256(gearBytes) },
    inputs: {
      howMade:
        'deterministicRandom(label)(length): ChaCha20 (RFC 8439) keystream, key = SHA-256(UTF-8 label), nonce = 12 zero bytes, counter 0',
      small: {
        label: 'kinvault vectors v1 small input',
        length: smallInput.byteLength,
        sha256: sha256(smallInput),
      },
      default: {
        label: 'kinvault vectors v1 default input',
        length: defaultInput.byteLength,
        sha256: sha256(defaultInput),
      },
    },
    chunks: {
      small: { params: SMALL_CHUNKER, chunks: chunkList(smallInput, SMALL_CHUNKER, keys) },
      default: {
        params: DEFAULT_CHUNKER_PARAMS,
        chunks: chunkList(defaultInput, DEFAULT_CHUNKER_PARAMS, keys),
      },
    },
    blobs,
    tree: { encoded: toHex(treeBytes), id: toHex(treeId) },
    pack: {
      blobsFrom:
        'the first five chunks of the small input, then the tree above; nonces drawn in order from deterministicRandom("kinvault vectors v1 nonces") after the three blob vectors',
      headerPlaintext: toHex(encodePackHeader(info.entries)),
      size: info.size,
      name: info.name,
      sha256OfPack: sha256(packBytes),
      tail: toHex(packBytes.subarray(packBytes.byteLength - 512)),
    },
    snapshot: {
      plaintext: toHex(encodeSnapshot(snapshot)),
      sealed: toHex(sealedSnapshot.bytes),
      id: sealedSnapshot.id,
    },
    keyFiles: {
      repositoryId: toHex(repositoryId),
      kdf,
      passphrase,
      passphraseFile: toHex(keyFile),
      recoveryEntropy: toHex(recoveryEntropy),
      recoveryCode,
      recoveryFile: toHex(recoveryFile),
    },
    // Ed25519 signatures are deterministic: the same key and message give these bytes.
    keyFileReplacement: {
      replaces: 'the passphrase key file above, by the recovery-code key file bytes (an example)',
      message: toHex(replacementMessage),
      signature: toHex(signKeyFileReplacement(keys, replacement)),
    },
  };
}

export type Vectors = Awaited<ReturnType<typeof computeVectors>>;
