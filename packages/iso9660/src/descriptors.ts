/**
 * Volume descriptors (ECMA-119 8.4, 8.5, 8.3): the primary descriptor, the Joliet
 * supplementary descriptor (escape sequence "%/E": UCS-2 level 3, text fields in UCS-2
 * big-endian) and the set terminator. Each is one sector.
 */
import {
  putAsciiField,
  putBe32,
  putBoth16,
  putBoth32,
  putLe32,
  putUcs2Field,
  putVolumeDate,
  SECTOR,
} from './encoding.js';
import { writeRecord, type DirRecord } from './records.js';

export interface DescriptorText {
  systemId: string;
  volumeId: string;
  volumeSetId: string;
  publisherId: string;
  preparerId: string;
  applicationId: string;
}

export interface DescriptorFields {
  joliet: boolean;
  text: DescriptorText;
  volumeSectors: number;
  pathTableSize: number;
  lPathTableLba: number;
  mPathTableLba: number;
  /** The root's record (34 bytes: identifier [0], no System Use). */
  root: DirRecord;
  created: Date;
}

export function renderVolumeDescriptor(f: DescriptorFields): Uint8Array {
  const buf = new Uint8Array(SECTOR);
  const text = f.joliet ? putUcs2Field : putAsciiField;
  buf[0] = f.joliet ? 2 : 1;
  putAsciiField(buf, 1, 5, 'CD001');
  buf[6] = 1;
  text(buf, 8, 32, f.text.systemId);
  text(buf, 40, 32, f.text.volumeId);
  putBoth32(buf, 80, f.volumeSectors);
  if (f.joliet) putAsciiField(buf, 88, 3, '%/E');
  putBoth16(buf, 120, 1); // volume set size
  putBoth16(buf, 124, 1); // volume sequence number
  putBoth16(buf, 128, SECTOR);
  putBoth32(buf, 132, f.pathTableSize);
  putLe32(buf, 140, f.lPathTableLba);
  putBe32(buf, 148, f.mPathTableLba);
  writeRecord(buf, 156, f.root);
  text(buf, 190, 128, f.text.volumeSetId);
  text(buf, 318, 128, f.text.publisherId);
  text(buf, 446, 128, f.text.preparerId);
  text(buf, 574, 128, f.text.applicationId);
  text(buf, 702, 37, '');
  text(buf, 739, 37, '');
  text(buf, 776, 37, '');
  putVolumeDate(buf, 813, f.created);
  putVolumeDate(buf, 830, f.created);
  putVolumeDate(buf, 847, null);
  putVolumeDate(buf, 864, null);
  buf[881] = 1; // file structure version
  return buf;
}

export function renderTerminator(): Uint8Array {
  const buf = new Uint8Array(SECTOR);
  buf[0] = 255;
  putAsciiField(buf, 1, 5, 'CD001');
  buf[6] = 1;
  return buf;
}
