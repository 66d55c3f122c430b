import { describe, expect, it } from 'vitest';
import { formatRecoveryCode, generateRecoveryCode, parseRecoveryCode } from './recovery-code.js';
import { deterministicRandom } from './random.js';

describe('recovery codes', () => {
  const random = deterministicRandom('recovery-code.test');

  it('round-trips and looks like eight groups of four', () => {
    for (let i = 0; i < 100; i++) {
      const { code, entropy } = generateRecoveryCode(random);
      expect(code).toMatch(/^([0-9A-HJKMNP-TV-Z]{4}-){7}[0-9A-HJKMNP-TV-Z]{4}$/);
      expect(parseRecoveryCode(code)).toEqual(entropy);
    }
  });

  it('forgives case, spaces, missing dashes and O/I/L look-alikes', () => {
    const entropy = new Uint8Array(16).fill(0);
    const code = formatRecoveryCode(entropy);
    const sloppy = code.toLowerCase().replace(/-/g, ' ').replace(/0/g, 'o').replace(/1/g, 'l');
    expect(parseRecoveryCode(sloppy)).toEqual(entropy);
    expect(parseRecoveryCode(code.replace(/-/g, ''))).toEqual(entropy);
  });

  it('catches a mistyped character through the checksum', () => {
    const { code } = generateRecoveryCode(random);
    const chars = [...code];
    const at = 5;
    chars[at] = chars[at] === 'A' ? 'B' : 'A';
    expect(() => parseRecoveryCode(chars.join(''))).toThrow(/typo/);
  });

  it('names a character that never appears in a code, and a wrong length', () => {
    expect(() => parseRecoveryCode('UUUU-0000')).toThrow(/"U"/);
    expect(() => parseRecoveryCode('0000-0000')).toThrow(/has 8/);
  });
});
