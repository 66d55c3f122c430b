import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  comparePrimary,
  jolietIdentifiers,
  primaryIdentifiers,
  type NameRequest,
} from './names.js';

const files = (...names: string[]): NameRequest[] =>
  names.map((name) => ({ name, isDirectory: false }));
const hex64 = 'ab'.repeat(32);

/** What a reader shows: version and (primary) a trailing dot dropped. */
const shown = (id: string): string => id.replace(/;1$/, '').replace(/\.$/, '');

describe('primary-tree names', () => {
  it('maps to level-3 d-characters with one dot and ;1, directories without either', () => {
    expect(
      primaryIdentifiers(files('readme.txt', 'MANIFEST', 'a b-c.tar.gz', '.hidden', 'é')),
    ).toEqual(['README.TXT;1', 'MANIFEST.;1', 'A_B_C_TAR.GZ;1', '.HIDDEN;1', '_.;1']);
    expect(primaryIdentifiers([{ name: 'packs.d', isDirectory: true }])).toEqual(['PACKS_D']);
  });

  it('keeps names at most 30 characters (dot included, ;1 apart), the extension at most 8', () => {
    const [id] = primaryIdentifiers(files(`${hex64}.verylongextension`));
    expect(id).toBe(`${hex64.toUpperCase().slice(0, 21)}.VERYLONG;1`);
    const [plain] = primaryIdentifiers(files(hex64));
    expect(plain).toBe(`${hex64.toUpperCase().slice(0, 29)}.;1`);
    expect(primaryIdentifiers([{ name: hex64, isDirectory: true }])[0]).toHaveLength(30);
  });

  it('makes names that collide after mangling unique, whatever the input order', () => {
    const names = ['a.txt', 'A.txt', 'a?.txt', 'a_.txt', `${hex64}0`, `${hex64}1`, 'x', 'X'];
    const ids = primaryIdentifiers(files(...names));
    expect(new Set(ids.map(shown)).size).toBe(names.length);
    const reversed = primaryIdentifiers(files(...[...names].reverse()));
    expect(reversed).toEqual([...ids].reverse());
    for (const id of ids) expect(id).toMatch(/^[A-Z0-9_]*\.[A-Z0-9_]*;1$/);
  });

  it('keeps a file and a directory of the same shown name apart', () => {
    const ids = primaryIdentifiers([
      { name: 'data', isDirectory: true },
      { name: 'data', isDirectory: false },
    ]);
    expect(new Set(ids.map(shown)).size).toBe(2);
  });

  it('sorts as ECMA-119 9.3 says: name, then extension, space-padded', () => {
    const ids = ['AB.C;1', 'A.D;1', 'A;1', 'A_B;1', 'A.;1', 'B'];
    expect([...ids].sort(comparePrimary)).toEqual(['A;1', 'A.;1', 'A.D;1', 'AB.C;1', 'A_B;1', 'B']);
  });
});

describe('Joliet names', () => {
  it('keeps names of up to 64 characters as they are (64-hex pack names fit) and adds ;1 to files', () => {
    expect(jolietIdentifiers(files(hex64, 'Photo 2024.JPG'))).toEqual([
      `${hex64};1`,
      'Photo 2024.JPG;1',
    ]);
    expect(jolietIdentifiers([{ name: 'Mes documents', isDirectory: true }])).toEqual([
      'Mes documents',
    ]);
  });

  it('replaces what UCS-2 and Joliet cannot hold: characters beyond the BMP, controls, * / : ; ? \\', () => {
    expect(jolietIdentifiers(files('a😀b', 'x:y*z?.txt', 'semi;colon', 'back\\slash\t'))).toEqual([
      'a_b;1',
      'x_y_z_.txt;1',
      'semi_colon;1',
      'back_slash_;1',
    ]);
  });

  it('ends no name with a dot or a space (Windows and 7-Zip drop them)', () => {
    expect(jolietIdentifiers(files('trailing.dot.', 'space ', 'a. .'))).toEqual([
      'trailing.dot_;1',
      'space_;1',
      'a___;1',
    ]);
  });

  it('shortens longer names to 64 characters, keeping a short extension', () => {
    const [a, b] = jolietIdentifiers(files(`${'x'.repeat(100)}.pack`, 'y'.repeat(100)));
    expect(a).toBe(`${'x'.repeat(59)}.pack;1`);
    expect(b).toBe(`${'y'.repeat(64)};1`);
  });

  it('keeps shortened names unique within the directory, and independent of input order', () => {
    const names = Array.from({ length: 30 }, (_, i) => `${'z'.repeat(70)}${i}.txt`);
    names.push(`${'z'.repeat(60)}.txt`, `${'z'.repeat(60)}~1.txt`);
    const ids = jolietIdentifiers(files(...names));
    expect(new Set(ids).size).toBe(names.length);
    for (const id of ids) expect(id.replace(/;1$/, '').length).toBeLessThanOrEqual(64);
    expect(jolietIdentifiers(files(...[...names].reverse()))).toEqual([...ids].reverse());
  });

  it('property: any set of distinct names gets distinct, valid names in both trees', () => {
    const name = fc
      .string({
        unit: fc.oneof(
          fc.constantFrom('a', 'A', '.', ' ', 'é', '😀', ':', '_', '0'),
          fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
        ),
        minLength: 1,
        maxLength: 90,
      })
      .filter((n) => n !== '.' && n !== '..' && !n.includes('/') && !n.includes('\0'));
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.record({ name, isDirectory: fc.boolean() }), {
          selector: (r) => r.name,
          maxLength: 40,
        }),
        (requests) => {
          const p = primaryIdentifiers(requests);
          const j = jolietIdentifiers(requests);
          expect(new Set(p.map(shown)).size).toBe(requests.length);
          expect(new Set(j.map((id) => id.replace(/;1$/, ''))).size).toBe(requests.length);
          for (const id of p) {
            expect(id.replace(/;1$/, '').length).toBeLessThanOrEqual(30);
            expect(id).toMatch(/^[A-Z0-9_]*(\.[A-Z0-9_]*;1)?$/);
          }
          for (const id of j) {
            const bare = id.replace(/;1$/, '');
            expect(bare.length).toBeLessThanOrEqual(64);
            for (const ch of bare) {
              const cp = ch.codePointAt(0)!;
              expect(cp >= 0x20 && cp <= 0xffff && !'*/:;?\\'.includes(ch), bare).toBe(true);
              expect(cp < 0xd800 || cp > 0xdfff).toBe(true);
            }
          }
        },
      ),
      { numRuns: 100 },
    );
  });
});
