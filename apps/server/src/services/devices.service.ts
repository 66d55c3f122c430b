/**
 * Devices of the household: enrollment codes (single use, expiring), device tokens
 * (random, stored hashed), revocation. Knows nothing of HTTP or the CLI.
 */
import { createHash, randomBytes } from 'node:crypto';
import { encodeEnrollmentCode, KinvaultError } from '@kinvault/protocol';
import type { DeviceRow, DevicesRepository } from '../repositories/devices.repository.js';

export interface DeviceView {
  name: string;
  state: 'waiting for enrollment' | 'enrolled' | 'revoked';
  createdAt: string;
  enrolledAt: string | null;
  lastSeenAt: string | null;
}

export const DEVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function hashToken(token: string): Uint8Array {
  return createHash('sha256').update(token, 'utf8').digest();
}

function newToken(): string {
  return randomBytes(32).toString('base64url');
}

function view(d: DeviceRow): DeviceView {
  return {
    name: d.name,
    state: d.revoked_at ? 'revoked' : d.enrolled_at ? 'enrolled' : 'waiting for enrollment',
    createdAt: d.created_at.toISOString(),
    enrolledAt: d.enrolled_at?.toISOString() ?? null,
    lastSeenAt: d.last_seen_at?.toISOString() ?? null,
  };
}

export function devicesService(
  repo: DevicesRepository,
  opts: { publicUrl: string; fingerprint: string; ttlMinutes: number; now?: () => Date },
) {
  const now = opts.now ?? (() => new Date());
  return {
    /** Registers a device and returns its one-line enrollment code. */
    async add(name: string): Promise<{ code: string; expiresAt: string; device: DeviceView }> {
      if (!DEVICE_NAME.test(name)) {
        throw new KinvaultError(
          'INVALID_ARGUMENT',
          `"${name}" is not a usable device name: use 1–64 letters, digits, ".", "_" or "-", starting with a letter or digit (for example anna-laptop).`,
        );
      }
      const token = newToken();
      const expiresAt = new Date(now().getTime() + opts.ttlMinutes * 60_000);
      const device = await repo.createWithEnrollment(name, hashToken(token), expiresAt);
      if (!device) {
        throw new KinvaultError(
          'INVALID_ARGUMENT',
          `A device named "${name}" already exists. Choose another name, or revoke the old one with "kinvaultd device revoke ${name}".`,
        );
      }
      const code = encodeEnrollmentCode({
        url: opts.publicUrl,
        fingerprint: opts.fingerprint,
        token,
        device: name,
      });
      return { code, expiresAt: expiresAt.toISOString(), device: view(device) };
    },

    /** Trades an enrollment token for a device token (shown once, stored hashed). */
    async enroll(enrollmentToken: string): Promise<{ deviceToken: string; device: DeviceView }> {
      const deviceToken = newToken();
      const device = await repo.enroll(hashToken(enrollmentToken), hashToken(deviceToken), now());
      if (!device) {
        throw new KinvaultError(
          'INVALID_ARGUMENT',
          'This enrollment code is unknown, already used or expired. Ask for a new one with "kinvaultd device add NAME".',
        );
      }
      return { deviceToken, device: view(device) };
    },

    /** The device a token belongs to, or null (unknown or revoked). */
    async authenticate(deviceToken: string): Promise<{ id: string; name: string } | null> {
      const d = await repo.byTokenHash(hashToken(deviceToken));
      if (!d) return null;
      await repo.touch(d.id, now());
      return { id: d.id, name: d.name };
    },

    async list(): Promise<DeviceView[]> {
      return (await repo.list()).map(view);
    },

    async revoke(name: string): Promise<DeviceView> {
      const d = await repo.revoke(name, now());
      if (!d)
        throw new KinvaultError(
          'INVALID_ARGUMENT',
          `There is no device named "${name}". "kinvaultd device list" shows the devices.`,
        );
      return view(d);
    },
  };
}

export type DevicesService = ReturnType<typeof devicesService>;
