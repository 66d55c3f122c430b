import { describe, expect, it } from 'vitest';
import { GEAR_SCAN_WASM } from './gear-scan.wasm.js';
// @ts-expect-error -- a plain JavaScript build script without type declarations
import { assembleGearScan } from '../scripts/assemble-wasm.mjs';

describe('gear-scan.wasm.ts', () => {
  it('holds exactly the assembled gear-scan.wat (run npm run assemble-wasm after editing it)', async () => {
    const assembled = (await assembleGearScan()) as Buffer;
    expect(assembled.toString('base64')).toBe(GEAR_SCAN_WASM);
  });
});
