/**
 * writeIso: the bytes of a planned image, as an async iterable, from any byte on.
 *
 * Contract: the output from byte `from` is exactly bytes [from, plan.size) of the full
 * image, and the same for the same plan and file bytes. Files' chunks are passed through
 * unchanged (the writer only adds the zero padding to each file's last sector), so
 * memory stays bounded by the largest directory and the sources' chunks. A source is
 * opened only when its bytes are needed, at the first needed position. A source that
 * gives more or fewer bytes than the planned size fails the write (CONFLICT, naming the
 * file): the image would be wrong.
 */
import { KinvaultError } from '@kinvault/protocol';
import { SECTOR, sectorsFor } from './encoding.js';
import { renderTerminator, renderVolumeDescriptor } from './descriptors.js';
import {
  FIRST_DESCRIPTOR_LBA,
  layoutOf,
  type IsoPlan,
  type Layout,
  type TreeLayout,
} from './plan.js';
import { renderPathTable } from './path-table.js';
import { renderDirectory, writeContinuations } from './records.js';

/** The bytes of file `path` from byte `start` to its end. */
export type IsoSource = (path: string, start: number) => AsyncIterable<Uint8Array>;

export interface WriteIsoOptions {
  /** First byte of the image to produce (default 0). */
  from?: number;
}

interface Section {
  lba: number;
  sectors: number;
  render: () => Uint8Array;
}

export async function* writeIso(
  plan: IsoPlan,
  open: IsoSource,
  options: WriteIsoOptions = {},
): AsyncGenerator<Uint8Array, void, undefined> {
  const layout = layoutOf(plan);
  const from = options.from ?? 0;
  if (!Number.isSafeInteger(from) || from < 0 || from > plan.size) {
    throw new KinvaultError(
      'INVALID_ARGUMENT',
      `writeIso: from must be a byte offset from 0 to the image's size ${plan.size}, not ${from}.`,
    );
  }
  for (const section of metadataSections(layout)) {
    const start = section.lba * SECTOR;
    const end = start + section.sectors * SECTOR;
    if (end <= from) continue;
    const bytes = section.render();
    yield from > start ? bytes.subarray(from - start) : bytes;
  }
  for (const file of plan.files) {
    if (file.size === 0) continue;
    const end = file.offset + sectorsFor(file.size) * SECTOR;
    if (end <= from) continue;
    const start = Math.max(0, from - file.offset);
    if (start < file.size) yield* fileBytes(open, file.path, file.size, start);
    const pad = end - file.offset - Math.max(start, file.size);
    if (pad > 0) yield new Uint8Array(pad);
  }
}

async function* fileBytes(
  open: IsoSource,
  path: string,
  size: number,
  start: number,
): AsyncGenerator<Uint8Array, void, undefined> {
  let at = start;
  for await (const chunk of open(path, start)) {
    if (chunk.length > size - at) {
      throw sizeChanged(path, size, `more than ${size} bytes`);
    }
    at += chunk.length;
    if (chunk.length > 0) yield chunk;
  }
  if (at < size) throw sizeChanged(path, size, `${at} bytes, not ${size}`);
}

function sizeChanged(path: string, size: number, what: string): KinvaultError {
  return new KinvaultError(
    'CONFLICT',
    `${path} gave ${what}: it changed since the volume was planned. Plan the volume again.`,
    { details: { path, size } },
  );
}

function metadataSections(layout: Layout): Section[] {
  const { primary, joliet } = layout;
  const descriptor = (t: TreeLayout, isJoliet: boolean): Uint8Array =>
    renderVolumeDescriptor({
      joliet: isJoliet,
      text: isJoliet ? layout.text.joliet : layout.text.primary,
      volumeSectors: layout.volumeSectors,
      pathTableSize: t.pathTableSize,
      lPathTableLba: t.lPathTableLba,
      mPathTableLba: t.mPathTableLba,
      root: t.rootRecord,
      created: layout.created,
    });
  const sections: Section[] = [
    {
      lba: 0,
      sectors: FIRST_DESCRIPTOR_LBA,
      render: () => new Uint8Array(FIRST_DESCRIPTOR_LBA * SECTOR),
    },
    { lba: FIRST_DESCRIPTOR_LBA, sectors: 1, render: () => descriptor(primary, false) },
    { lba: FIRST_DESCRIPTOR_LBA + 1, sectors: 1, render: () => descriptor(joliet, true) },
    { lba: FIRST_DESCRIPTOR_LBA + 2, sectors: 1, render: renderTerminator },
  ];
  for (const t of [primary, joliet]) {
    const lbaOf = new Map(t.dirs.map(({ dir }, i) => [dir, t.lbas[i]!]));
    for (const bigEndian of [false, true]) {
      sections.push({
        lba: bigEndian ? t.mPathTableLba : t.lPathTableLba,
        sectors: t.pathTableSectors,
        render: () =>
          renderPathTable(t.dirs, (dir) => lbaOf.get(dir)!, bigEndian, t.pathTableSectors * SECTOR),
      });
    }
  }
  for (const t of [primary, joliet]) {
    t.records.forEach((records, i) => {
      const lba = t.lbas[i]!;
      const sectors = t.sectors[i]!;
      const total = sectors + t.continuationSectors[i]!;
      const render = (): Uint8Array => {
        const buf = renderDirectory(records, sectors, total);
        writeContinuations(buf, lba, records);
        return buf;
      };
      sections.push({ lba, sectors: total, render });
    });
  }
  return sections;
}
