import { describe, expect, it } from 'vitest';
import {
  getRecordDate,
  putAsciiField,
  putBoth16,
  putBoth32,
  putRecordDate,
  putUcs2Field,
  putVolumeDate,
  ucs2,
} from './encoding.js';
import { packRecords, makeRecord, renderDirectory } from './records.js';
import { nm, px, splitSystemUse, tf, CE_LENGTH } from './rockridge.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('both-endian numbers', () => {
  it('writes 16 bits little-endian then big-endian', () => {
    const b = new Uint8Array(4);
    putBoth16(b, 0, 0x0102);
    expect(hex(b)).toBe('02010102');
  });

  it('writes 32 bits little-endian then big-endian, up to 2^32 − 1', () => {
    const b = new Uint8Array(8);
    putBoth32(b, 0, 0x01020304);
    expect(hex(b)).toBe('0403020101020304');
    putBoth32(b, 0, 0xffffffff);
    expect(hex(b)).toBe('ffffffffffffffff');
    putBoth32(b, 0, 0xfffff800);
    expect(hex(b)).toBe('00f8fffffffff800');
  });
});

describe('dates', () => {
  it('writes the 7-byte record date in UTC, whole seconds', () => {
    const b = new Uint8Array(7);
    putRecordDate(b, 0, new Date('2026-12-02T18:30:59.999Z'));
    expect([...b]).toEqual([126, 12, 2, 18, 30, 59, 0]);
    expect(getRecordDate(b, 0).toISOString()).toBe('2026-12-02T18:30:59.000Z');
  });

  it('clamps record dates to 1900–2155, the field’s range', () => {
    const b = new Uint8Array(7);
    putRecordDate(b, 0, new Date('1850-06-01T00:00:00Z'));
    expect([...b]).toEqual([0, 1, 1, 0, 0, 0, 0]);
    putRecordDate(b, 0, new Date('2300-01-01T00:00:00Z'));
    expect([...b]).toEqual([255, 12, 31, 23, 59, 59, 0]);
  });

  it('reads a record date with a GMT offset (15-minute units, signed)', () => {
    const b = new Uint8Array([126, 12, 2, 20, 30, 0, 8]); // 20:30 at GMT+2
    expect(getRecordDate(b, 0).toISOString()).toBe('2026-12-02T18:30:00.000Z');
    b[6] = 0xfc; // GMT−1
    expect(getRecordDate(b, 0).toISOString()).toBe('2026-12-02T21:30:00.000Z');
  });

  it('writes the 17-byte volume date as digits and hundredths, or all zeros when unspecified', () => {
    const b = new Uint8Array(17).fill(0xee);
    putVolumeDate(b, 0, new Date('2026-12-02T18:30:05.678Z'));
    expect(Buffer.from(b.subarray(0, 16)).toString('latin1')).toBe('2026120218300567');
    expect(b[16]).toBe(0);
    putVolumeDate(b, 0, null);
    expect(Buffer.from(b.subarray(0, 16)).toString('latin1')).toBe('0000000000000000');
    expect(b[16]).toBe(0);
  });
});

describe('text fields', () => {
  it('pads ASCII fields with spaces and cuts them at their length', () => {
    const b = new Uint8Array(6);
    putAsciiField(b, 0, 6, 'AB');
    expect(Buffer.from(b).toString('latin1')).toBe('AB    ');
    putAsciiField(b, 0, 6, 'ABCDEFGH');
    expect(Buffer.from(b).toString('latin1')).toBe('ABCDEF');
  });

  it('writes UCS-2 big-endian, padded with UCS-2 spaces', () => {
    expect(hex(ucs2('aé€'))).toBe('006100e920ac');
    const b = new Uint8Array(8);
    putUcs2Field(b, 0, 8, 'é');
    expect(hex(b)).toBe('00e9002000200020');
  });
});

describe('directory records', () => {
  const date = new Date('2026-01-01T00:00:00Z');

  it('pads the identifier to an even offset and keeps each record even in length', () => {
    for (const id of ['A.;1', 'AB.;1', 'A']) {
      const r = makeRecord(Buffer.from(id), 0, date, [nm('x')[0]!]);
      expect(r.length % 2, id).toBe(0);
      const fixed = 33 + id.length + (id.length % 2 === 0 ? 1 : 0);
      expect(r.length).toBe(fixed + 6 + ((fixed + 6) % 2));
    }
  });

  it('never lets a record cross a sector: a record that does not fit starts the next sector', () => {
    const records = Array.from({ length: 40 }, (_, i) =>
      makeRecord(Buffer.from(`NAME${String(i).padStart(20, '0')}.;1`), 0, date, [
        px(false, 0o644, 1, i),
        tf(date),
      ]),
    );
    const { positions, sectors } = packRecords(records);
    records.forEach((r, i) => {
      const start = positions[i]!;
      expect(Math.floor(start / 2048), `record ${i}`).toBe(
        Math.floor((start + r.length - 1) / 2048),
      );
    });
    expect(sectors).toBeGreaterThan(1);
    const bytes = renderDirectory(records, sectors);
    // The gap at the end of the first sector is zero, which readers take as "next sector".
    const firstInSecond = positions.find((p) => p >= 2048)!;
    const lastInFirst = Math.max(...positions.filter((p) => p < 2048));
    const gapStart = lastInFirst + records[positions.indexOf(lastInFirst)]!.length;
    expect(firstInSecond).toBe(2048);
    expect(bytes.subarray(gapStart, 2048).every((x) => x === 0)).toBe(true);
  });

  it('moves System Use entries that do not fit into a continuation area, SP first kept', () => {
    const entries = [px(true, 0o755, 2, 1), tf(date), ...nm('n'.repeat(300))];
    const { inline, overflow } = splitSystemUse(entries, 150);
    expect(inline.reduce((s, e) => s + e.length, 0) + CE_LENGTH).toBeLessThanOrEqual(150);
    expect([...inline, ...overflow]).toEqual(entries);
    expect(splitSystemUse(entries.slice(0, 2), 150)).toEqual({
      inline: entries.slice(0, 2),
      overflow: [],
    });
  });

  it('splits a long Rock Ridge name into NM entries with CONTINUE on all but the last', () => {
    const parts = nm('é'.repeat(200)); // 400 UTF-8 bytes
    expect(parts.map((p) => [p.length, p[4]])).toEqual([
      [255, 1],
      [155, 0],
    ]);
  });
});
