/**
 * What a sealed catalog holds (design §19.2): newline-delimited JSON, one record per
 * line — a header, every pack with the blobs it is recorded for, every snapshot with
 * its device and packs, and an end record with the counts (a catalog that stops early
 * is refused by the reader even before the sealing's own truncation check).
 */
import { KinvaultError } from '@kinvault/protocol';
import type { CatalogPack, CatalogSnapshot } from '../repositories/recovery.repository.js';

export interface CatalogHeader {
  kind: 'kinvault-catalog';
  version: 1;
  repository: string;
  written: string;
  boxPublicKey: string;
  signPublicKey: string | null;
}

export interface CatalogContent {
  header: CatalogHeader;
  packs: { pack: string; size: number; blobs: [string, number][] }[];
  snapshots: {
    snapshot: string;
    device: string;
    created: string;
    files: number;
    bytes: number;
    packs: string[];
  }[];
}

const hex = (b: Buffer) => b.toString('hex');

/** The catalog's lines, each a UTF-8 JSON record ending in a newline. */
export async function* catalogLines(
  header: CatalogHeader,
  packs: AsyncIterable<CatalogPack>,
  snapshots: AsyncIterable<CatalogSnapshot>,
): AsyncGenerator<Uint8Array> {
  const line = (record: unknown) => Buffer.from(`${JSON.stringify(record)}\n`, 'utf8');
  const count = { packs: 0, snapshots: 0 };
  yield line(header);
  for await (const p of packs) {
    count.packs++;
    yield line({ pack: hex(p.name), size: p.size, blobs: p.blobs.map((b) => [hex(b.id), b.type]) });
  }
  for await (const s of snapshots) {
    count.snapshots++;
    yield line({
      snapshot: hex(s.id),
      device: s.device,
      created: s.createdAt.toISOString(),
      files: s.files,
      bytes: s.bytes,
      packs: s.packs.map(hex),
    });
  }
  yield line({ end: true, ...count });
}

const invalid = (why: string) =>
  new KinvaultError('CATALOG_INVALID', `The catalog cannot be read: ${why}.`);

/** Parses a catalog's plaintext; CATALOG_INVALID unless it is whole and well-formed. */
export function parseCatalog(text: string): CatalogContent {
  const records = text
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        throw invalid('a line is not JSON');
      }
    });
  const header = records[0] as CatalogHeader | undefined;
  if (header?.kind !== 'kinvault-catalog' || header.version !== 1)
    throw invalid('it does not start with a version 1 header');
  const end = records[records.length - 1];
  const out: CatalogContent = { header, packs: [], snapshots: [] };
  for (const r of records.slice(1, -1)) {
    if (typeof r.pack === 'string') out.packs.push(r as CatalogContent['packs'][number]);
    else if (typeof r.snapshot === 'string')
      out.snapshots.push(r as CatalogContent['snapshots'][number]);
    else throw invalid('a record is neither a pack nor a snapshot');
  }
  if (end?.end !== true || end.packs !== out.packs.length || end.snapshots !== out.snapshots.length)
    throw invalid('it ends early (its end record is missing or does not match)');
  return out;
}
