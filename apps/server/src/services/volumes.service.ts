/**
 * ISO volumes at archive targets (design §21).
 *
 * Contract:
 * - `fill(target)` seals volumes of the target's volume size from the packs on the NAS
 *   that no volume there holds yet, oldest first, while there are enough for a whole one;
 *   `fill(target, { all: true })` seals what there is (`kinvaultd volumes seal`). Sealing
 *   records the volume's content and layout in one transaction under the target's lock,
 *   so a pack is in at most one volume per target.
 * - `upload(id)` takes a volume to verified, from wherever a crash left it: it makes the
 *   image once to learn its SHA-256 (and, for a store that uploads in parts, each part's,
 *   so the provider's composite checksum is known before it is sent), uploads it as one
 *   object (an interrupted upload goes on from the first part the provider lacks: the
 *   image is made again from there), checks it without reading it back where the
 *   provider records checksums (size, storage class, composite checksum, our SHA-256 in
 *   its metadata), and only then gives its packs the location `volume:<id>@<target>` and
 *   deletes the staging copies that their packs can spare (each keeps `copies` verified
 *   off-site copies without them). The NAS copies stay.
 * - Every pack's bytes are checked against its name while an image is made: a damaged
 *   NAS copy stops the volume (PACK_HASH_MISMATCH), never goes into one.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { formatBytes, KinvaultError } from '@kinvault/protocol';
import { writeIso } from '@kinvault/iso9660';
import { listAll, objectKeys, readAll, type Body, type Store } from '@kinvault/stores';
import type { HouseholdRepository } from '../repositories/household.repository.js';
import type { TargetRow, TargetsRepository } from '../repositories/targets.repository.js';
import { resumeAt, type UploadsRepository } from '../repositories/uploads.repository.js';
import type { VolumeRow, VolumesRepository } from '../repositories/volumes.repository.js';
import type { PackStore } from '../stores/pack.store.js';
import { layoutVolume, readmeText, volumeKey, type VolumeInput } from './volume-content.js';

export interface VolumesDeps {
  volumes: VolumesRepository;
  targets: TargetsRepository;
  household: HouseholdRepository;
  uploads: UploadsRepository;
  packs: PackStore;
  /** The NAS store: key files, catalogs, manifests. */
  nas: Store;
  open(url: string): Store;
  copies: number;
  now?: () => Date;
}

/** A volume's default size (design §21.4 says how to choose another). */
export const DEFAULT_VOLUME_SIZE = 5e9;
/** Room kept in a volume for its ISO structures and MANIFEST, beside the files counted. */
const STRUCTURE_BYTES = 4 * 1024 * 1024;

/** Not retryable: a check records the damage, and the volume is sealed again without it. */
function packDamaged(name: string): KinvaultError {
  return new KinvaultError(
    'PACK_HASH_MISMATCH',
    `The NAS copy of pack ${name.slice(0, 12)} does not hash to its name, so no volume holds it. Run "kinvaultd check": it records the damage.`,
    { details: { pack: name } },
  );
}

/** A pack's bytes from `start` on, the whole pack hashed against its name on the way. */
async function* packFrom(path: string, name: string, start: number): AsyncGenerator<Uint8Array> {
  const hash = createHash('sha256');
  let at = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    const bytes = chunk as Buffer;
    hash.update(bytes);
    const end = at + bytes.byteLength;
    if (end > start) yield at >= start ? bytes : bytes.subarray(start - at);
    at = end;
  }
  if (hash.digest('hex') !== name) throw packDamaged(name);
}

async function* oneChunk(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/** The SHA-256 of the image, and of each part of `partSize`; S3's composite of those. */
async function hashImage(image: AsyncIterable<Uint8Array>, partSize: number) {
  const whole = createHash('sha256');
  const parts: Buffer[] = [];
  let part = createHash('sha256');
  let inPart = 0;
  for await (let bytes of image) {
    whole.update(bytes);
    while (bytes.byteLength > 0) {
      const take = Math.min(partSize - inPart, bytes.byteLength);
      part.update(bytes.subarray(0, take));
      inPart += take;
      bytes = bytes.subarray(take);
      if (inPart === partSize) {
        parts.push(part.digest());
        part = createHash('sha256');
        inPart = 0;
      }
    }
  }
  if (inPart > 0) parts.push(part.digest());
  const sha256 = whole.digest('hex');
  const composite = `${createHash('sha256').update(Buffer.concat(parts)).digest('base64')}-${parts.length}`;
  return { sha256, parts: parts.length, composite };
}

export function volumesService(deps: VolumesDeps) {
  const { volumes, targets } = deps;
  const now = deps.now ?? (() => new Date());

  async function archiveTarget(name: string): Promise<TargetRow> {
    const t = (await targets.list()).find((r) => r.name === name && r.role === 'archive');
    if (!t)
      throw new KinvaultError(
        'NOT_FOUND',
        `There is no archive target "${name}" ("kinvaultd target list" lists them).`,
      );
    return t;
  }

  /** The key files, the newest catalog and every manifest, from the NAS store. */
  async function recoveryFiles(): Promise<VolumeInput['files']> {
    const read = async (key: string) => ({ path: key, bytes: await readAll(deps.nas, key) });
    const catalogs = await listAll(deps.nas, 'catalog/');
    const snapshots = await listAll(deps.nas, 'snapshots/');
    return [
      await read(objectKeys.keyFile('passphrase')),
      await read(objectKeys.keyFile('recovery')),
      ...(catalogs.length > 0 ? [await read(catalogs.at(-1)!.key)] : []),
      ...(await Promise.all(snapshots.map((s) => read(s.key)))),
    ];
  }

  async function repositoryId(): Promise<string> {
    const household = await deps.household.get();
    if (!household)
      throw new KinvaultError('FAILED_PRECONDITION', 'The household is not set up yet.');
    return household.repositoryId.toString('hex');
  }

  /** What a volume is made from: with the README for its id (README first). */
  const inputOf = (
    id: number,
    repository: string,
    createdAt: Date,
    files: VolumeInput['files'],
    packs: VolumeInput['packs'],
  ): VolumeInput => ({
    id,
    repositoryId: repository,
    createdAt,
    packs,
    files: [
      {
        path: 'README.txt',
        bytes: Buffer.from(readmeText({ id, repositoryId: repository, createdAt })),
      },
      ...files.filter((f) => f.path !== 'README.txt' && f.path !== 'MANIFEST'),
    ],
  });

  return {
    list: (target?: string) => volumes.list(target),

    /** Seals what the packs waiting at `target` fill (all of them with `all`); the new ids. */
    async fill(targetName: string, options: { all?: boolean } = {}): Promise<number[]> {
      const t = await archiveTarget(targetName);
      const size = t.volumeSize ?? DEFAULT_VOLUME_SIZE;
      return volumes.sealing(targetName, async (repo) => {
        const waiting = await repo.candidates(targetName);
        const sealedIds: number[] = [];
        const total = waiting.reduce((n, p) => n + p.size, 0);
        if (waiting.length === 0 || (!options.all && total + STRUCTURE_BYTES < size))
          return sealedIds;
        const repository = await repositoryId();
        const files = await recoveryFiles();
        const fixed = files.reduce((n, f) => n + f.bytes.byteLength, STRUCTURE_BYTES);
        while (waiting.length > 0) {
          let bytes = fixed;
          let n = 0;
          while (n < waiting.length && (n === 0 || bytes + waiting[n]!.size <= size))
            bytes += waiting[n++]!.size;
          // Until one more pack would not fit, the volume is not full: it waits for more.
          if (n === waiting.length && !options.all) break;
          const packs = waiting.splice(0, n);
          const createdAt = now();
          const id = await repo.create({
            target: targetName,
            createdAt,
            layout: (id) => {
              const laid = layoutVolume(inputOf(id, repository, createdAt, files, packs));
              return { key: volumeKey(id), size: laid.plan.size, content: laid.content };
            },
          });
          sealedIds.push(id);
        }
        return sealedIds;
      });
    },

    /** Takes a volume from wherever it is to verified (see the contract). */
    async upload(id: number): Promise<VolumeRow> {
      let v = await get(id);
      if (v.state === 'verified') return v;
      const t = await archiveTarget(v.target);
      const store = deps.open(t.url);
      try {
        if (v.state === 'sealed') v = await build(v, store);
        if (v.state === 'uploading') v = await send(v, t, store);
        await verify(v, store);
      } catch (e) {
        await volumes.failed(id, e instanceof Error ? e.message : String(e));
        throw e;
      }
      await volumes.verified(id, t.name);
      await evict(id);
      return get(id);
    },
  };

  async function get(id: number): Promise<VolumeRow> {
    const v = await volumes.get(id);
    if (!v) throw new KinvaultError('NOT_FOUND', `There is no volume ${id}.`);
    return v;
  }

  /**
   * The image of a volume from byte `from` on, made again from its recorded content: the
   * same layout (checked against the offsets recorded when it was sealed) and bytes.
   */
  async function image(v: VolumeRow, from = 0): Promise<AsyncIterable<Uint8Array>> {
    const stored = await volumes.content(v.id);
    const input = inputOf(v.id, await repositoryId(), v.createdAt, stored.files, stored.packs);
    const { plan, content } = layoutVolume(input);
    const same =
      plan.size === v.size &&
      content.packs.every((p, i) => p.offset === stored.packs[i]!.offset) &&
      content.files.every((f, i) => f.offset === stored.files[i]?.offset);
    if (!same)
      throw new KinvaultError(
        'INTERNAL',
        `Volume ${v.id} no longer lays out as it was sealed; it is not uploaded. This is a defect: please report it.`,
      );
    const files = new Map(content.files.map((f) => [f.path, f.bytes]));
    const packNames = new Map(content.packs.map((p) => [objectKeys.pack(p.name), p.name]));
    const source = (path: string, start: number): AsyncIterable<Uint8Array> => {
      const bytes = files.get(path);
      if (bytes) return oneChunk(bytes.subarray(start));
      const name = packNames.get(path)!;
      return packFrom(deps.packs.path(name), name, start);
    };
    return writeIso(plan, source, { from });
  }

  async function build(v: VolumeRow, store: Store): Promise<VolumeRow> {
    const partSize = store.partSizeFor?.(v.size) ?? v.size;
    const made = await hashImage(await image(v), partSize);
    const single = made.parts <= 1;
    await volumes.built(v.id, {
      sha256: made.sha256,
      partSize,
      parts: made.parts,
      // One part goes in one PutObject, whose checksum is the whole object's.
      providerSha256: single ? Buffer.from(made.sha256, 'hex').toString('base64') : made.composite,
    });
    return get(v.id);
  }

  async function send(v: VolumeRow, t: TargetRow, store: Store): Promise<VolumeRow> {
    // Whole there already (a crash came between completing it and recording that).
    const there = await store.head(v.key);
    if (!(there?.size === v.size && there.sha256 === v.sha256)) {
      const body: Body = {
        size: v.size,
        sha256: v.sha256!,
        open: () => imageFrom(v, 0),
        openAt: (offset) => imageFrom(v, offset),
      };
      await store.put(v.key, body, {
        resume: resumeAt(deps.uploads, t.name, v.key),
        onPart: (done) => volumes.partsDone(v.id, done),
      });
      await deps.uploads.clear(t.name, v.key);
    }
    await volumes.uploaded(v.id, store.capabilities.storageClass ?? null);
    return get(v.id);
  }

  /** The image from `from` on, made only once read. */
  async function* imageFrom(v: VolumeRow, from: number): AsyncGenerator<Uint8Array> {
    yield* await image(v, from);
  }

  /** Checks the object against the record; a mismatch deletes it and uploads it again. */
  async function verify(v: VolumeRow, store: Store): Promise<void> {
    const there = await store.head(v.key);
    const problem = !there
      ? 'it is not there'
      : there.size !== v.size
        ? `it holds ${formatBytes(there.size)}, not ${formatBytes(v.size)}`
        : there.sha256 !== null && there.sha256 !== v.sha256
          ? 'its recorded SHA-256 is another'
          : there.storageClass !== undefined && there.storageClass !== v.storageClass
            ? `its storage class is ${there.storageClass}, not ${v.storageClass}`
            : there.providerSha256 !== undefined && there.providerSha256 !== v.providerSha256
              ? 'its checksum at the provider is another'
              : there.sha256 === null && !(await readBack(store, v))
                ? 'its bytes read back are others'
                : null;
    if (!problem) return;
    await store.delete(v.key);
    await volumes.reset(v.id, `The volume at the target did not verify (${problem}); sent again.`);
    throw new KinvaultError(
      'CHECKSUM_MISMATCH',
      `Volume ${v.id} at "${v.target}" did not verify (${problem}): it is uploaded again.`,
      { retryable: true },
    );
  }

  /** For a store that records no SHA-256 (a folder): the bytes read back hash to the record. */
  async function readBack(store: Store, v: VolumeRow): Promise<boolean> {
    const hash = createHash('sha256');
    for await (const chunk of await store.get(v.key)) hash.update(chunk as Buffer);
    return hash.digest('hex') === v.sha256;
  }

  /** Deletes the staging copies a verified volume's packs can spare. */
  async function evict(id: number): Promise<void> {
    for (const c of await volumes.evictable(id, deps.copies)) {
      await deps.open(c.url).delete(objectKeys.pack(c.pack));
      await targets.dropPackCopy(Buffer.from(c.pack, 'hex'), c.target);
    }
  }
}

export type VolumesService = ReturnType<typeof volumesService>;
