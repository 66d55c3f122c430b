/** Device authentication from "Authorization: Bearer <device token>". */
import type { DevicesService } from '../services/devices.service.js';
import type { Device } from '../services/packs.service.js';

export function bearerToken(header: string | null | undefined): string | null {
  const m = /^Bearer ([A-Za-z0-9_-]{20,200})$/.exec(header ?? '');
  return m ? m[1]! : null;
}

export async function authenticate(
  devices: DevicesService,
  header: string | null | undefined,
): Promise<Device | null> {
  const token = bearerToken(header);
  return token ? devices.authenticate(token) : null;
}
