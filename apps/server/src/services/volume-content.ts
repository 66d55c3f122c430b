/**
 * What an ISO volume holds and where (design §21.2): a plain README, the key files, the
 * newest sealed catalog, the sealed snapshot manifests and the packs, under the same
 * paths as in every store (an extracted volume is a store), and last a MANIFEST that
 * anyone can read without keys, listing every other file's byte offset and length in
 * the image. The MANIFEST's data lies after all the others, so their offsets do not
 * depend on its size. Pure: the same input gives the same layout and bytes.
 */
import { planIso, type IsoEntry, type IsoPlan } from '@kinvault/iso9660';
import { objectKeys } from '@kinvault/stores';
import type { VolumeContent, VolumeFile } from '../repositories/volumes.repository.js';

export interface VolumeInput {
  /** The volume's number (its object is `volumes/kinvault-<number>.iso`). */
  id: number;
  repositoryId: string;
  createdAt: Date;
  /** README, key files, catalog, manifests: path and bytes, in this order. */
  files: { path: string; bytes: Buffer }[];
  packs: { name: string; size: number }[];
}

export const volumeKey = (id: number) => objectKeys.volume(id);
export const volumeName = (id: number) => `KINVAULT_${String(id).padStart(6, '0')}`;

const FILE_MODE = 0o444;

function entries(input: VolumeInput, manifestSize: number): IsoEntry[] {
  const at = { mtime: input.createdAt, mode: FILE_MODE };
  return [
    ...input.files.map((f) => ({ path: f.path, size: f.bytes.byteLength, ...at })),
    ...input.packs.map((p) => ({ path: objectKeys.pack(p.name), size: p.size, ...at })),
    { path: 'MANIFEST', size: manifestSize, ...at },
  ];
}

const planOf = (input: VolumeInput, manifestSize: number): IsoPlan =>
  planIso(entries(input, manifestSize), {
    volumeId: volumeName(input.id),
    created: input.createdAt,
  });

/** The MANIFEST's text (design §21.2): a header, then a line per file but itself. */
export function manifestText(input: VolumeInput, plan: IsoPlan): string {
  const lines = [
    'kinvault-volume 1',
    `volume ${volumeName(input.id)}`,
    `repository ${input.repositoryId}`,
    `created ${input.createdAt.toISOString()}`,
    `files ${plan.files.length - 1}`,
    ...plan.files.slice(0, -1).map((f) => `${f.offset} ${f.size} ${f.path}`),
  ];
  return `${lines.join('\n')}\n`;
}

/**
 * The volume's layout and content: every file with its offset, the MANIFEST last. The
 * MANIFEST's own size enters only its directory record, never another file's offset.
 */
export function layoutVolume(input: VolumeInput): { plan: IsoPlan; content: VolumeContent } {
  const first = planOf(input, 0);
  const manifest = Buffer.from(manifestText(input, first), 'utf8');
  const plan = planOf(input, manifest.byteLength);
  const offsets = plan.files.map((f) => f.offset);
  if (first.files.some((f, i) => i < offsets.length - 1 && f.offset !== offsets[i]))
    throw new Error('volume layout: the MANIFEST moved another file'); // a writer defect
  const files: VolumeFile[] = [
    ...input.files.map((f, i) => ({ path: f.path, bytes: f.bytes, offset: offsets[i]! })),
    { path: 'MANIFEST', bytes: manifest, offset: offsets.at(-1)! },
  ];
  const packs = input.packs.map((p, i) => ({
    ...p,
    offset: offsets[input.files.length + i]!,
  }));
  return { plan, content: { files, packs } };
}

/** The plain-words README every volume starts with. */
export function readmeText(v: { id: number; repositoryId: string; createdAt: Date }): string {
  return `KINVAULT BACKUP VOLUME ${volumeName(v.id)}
Written ${v.createdAt.toISOString()} for the household repository ${v.repositoryId}.

This disc image is one part of a family's backup made by Kinvault, a free backup
program. Everything in it is encrypted: without the household's passphrase, or the
recovery code that was printed when the backup was set up, nobody can read it, and
neither could the companies that stored it.

What is here:
  packs/       the backed-up files, cut into pieces, encrypted, in "packs"; each pack is
               named by its SHA-256, so anyone can check that it is undamaged
  snapshots/   the list of every backup ever made (encrypted)
  keys/        the household key, locked by the passphrase and by the recovery code
  catalog/     an index of all packs and snapshots (encrypted)
  MANIFEST     a plain list of every file in this image with its byte offset and length

To get the files back:
  1. Get Kinvault (free software; its source code's docs/design.md specifies this
     format byte by byte, so any programmer can read it even without Kinvault).
  2. Put this image, or the files copied out of it (7-Zip, "bsdtar -xf", or opening
     the image on most computers does it), in a folder with any other volumes found.
  3. Run:  kinvaultd recover --data-dir NEWDIR --from file:///path/to/that/folder
     then on any computer:  kinvault restore latest --target WHERE
     and give the passphrase, or the recovery code.
Other volumes hold other packs: a restore needs all volumes of a household, or
whatever parts of them the MANIFESTs say hold the files you want.
`;
}
