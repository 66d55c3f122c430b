/** SQL for devices and enrollment tokens. Tokens are stored only as SHA-256 hashes. */
import { atomically, type Db } from './db.js';

export interface DeviceRow {
  id: string;
  name: string;
  created_at: Date;
  enrolled_at: Date | null;
  revoked_at: Date | null;
  last_seen_at: Date | null;
}

export function devicesRepository(sql: Db) {
  return {
    async createWithEnrollment(
      name: string,
      enrollmentHash: Uint8Array,
      expiresAt: Date,
    ): Promise<DeviceRow | null> {
      return atomically(sql, async (tx) => {
        const [device] = await tx<DeviceRow[]>`
          insert into devices (name) values (${name}) on conflict (name) do nothing returning *`;
        if (!device) return null;
        await tx`insert into enrollments (token_hash, device_id, expires_at)
                 values (${Buffer.from(enrollmentHash)}, ${device.id}, ${expiresAt})`;
        return device;
      });
    },

    /** Uses an enrollment token once: sets the device token; null if unknown, used or expired. */
    async enroll(
      enrollmentHash: Uint8Array,
      deviceTokenHash: Uint8Array,
      now: Date,
    ): Promise<DeviceRow | null> {
      return atomically(sql, async (tx) => {
        const [e] = await tx<{ device_id: string }[]>`
          update enrollments set used_at = ${now}
          where token_hash = ${Buffer.from(enrollmentHash)} and used_at is null and expires_at > ${now}
          returning device_id`;
        if (!e) return null;
        const [device] = await tx<DeviceRow[]>`
          update devices set token_hash = ${Buffer.from(deviceTokenHash)}, enrolled_at = ${now}
          where id = ${e.device_id} and revoked_at is null returning *`;
        return device ?? null;
      });
    },

    async byTokenHash(hash: Uint8Array): Promise<DeviceRow | null> {
      const [d] = await sql<DeviceRow[]>`
        select * from devices where token_hash = ${Buffer.from(hash)} and revoked_at is null`;
      return d ?? null;
    },

    async touch(id: string, now: Date): Promise<void> {
      await sql`update devices set last_seen_at = ${now} where id = ${id}`;
    },

    async list(): Promise<DeviceRow[]> {
      return sql<DeviceRow[]>`select * from devices order by name`;
    },

    async revoke(name: string, now: Date): Promise<DeviceRow | null> {
      const [d] = await sql<DeviceRow[]>`
        update devices set revoked_at = coalesce(revoked_at, ${now}), token_hash = null
        where name = ${name} returning *`;
      return d ?? null;
    },
  };
}

export type DevicesRepository = ReturnType<typeof devicesRepository>;
