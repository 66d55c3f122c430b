import { describe, expect, it } from 'vitest';
import { decodeEnrollmentCode, encodeEnrollmentCode } from './enrollment.js';

const sample = {
  url: 'https://192.0.2.10:7443',
  fingerprint: 'ab'.repeat(32),
  token: 'x'.repeat(43),
  device: 'anna-laptop',
};

describe('enrollment codes', () => {
  it('round-trip as one line that survives surrounding whitespace', () => {
    const code = encodeEnrollmentCode(sample);
    expect(code).toMatch(/^KV1-[A-Za-z0-9_-]+$/);
    expect(decodeEnrollmentCode(`  ${code}\n`)).toEqual(sample);
  });

  it('explain what is wrong with a bad code', () => {
    expect(() => decodeEnrollmentCode('hello')).toThrow(/does not start with KV1-/);
    const code = encodeEnrollmentCode(sample);
    expect(() => decodeEnrollmentCode(code.slice(0, -5))).toThrow(
      /cut short|fingerprint|token|url/,
    );
    const http = encodeEnrollmentCode({ ...sample });
    expect(decodeEnrollmentCode(http).url).toBe(sample.url);
    expect(() => encodeEnrollmentCode({ ...sample, url: 'http://x:1' })).toThrow();
  });
});
