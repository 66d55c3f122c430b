/**
 * Archived storage classes (GLACIER, DEEP_ARCHIVE): an object is unreadable until restored.
 * A restore is ongoing until the test completes it (completeRestores) or, with a configured
 * delay, until the server's clock passes its readyAt; the copy then expires at 00:00 UTC after
 * `Days` days, on the same clock.
 */
import {
  ARCHIVED,
  type Ctx,
  type Handler,
  type Tier,
  httpDate,
  requireBucket,
  sendEmpty,
} from './context.js';
import { S3Error, errors, invalidArgument } from './errors.js';
import type { ObjectMeta, RestoreState, Store } from './store.js';
import { parseXml, text } from './xml.js';
import { memorySink, planBody, receiveBody } from './body.js';

const DAY = 86_400_000;
const TIERS: Tier[] = ['Expedited', 'Standard', 'Bulk'];

const expiry = (from: number, days: number) => Math.ceil((from + days * DAY) / DAY) * DAY;

/** The restore as of `now`: a delayed restore that is due counts as completed; an expired one is gone. */
export function currentRestore(meta: ObjectMeta, now: number): RestoreState | undefined {
  let r = meta.restore;
  if (!r) return undefined;
  if (r.completedAt === undefined && r.readyAt !== undefined && now >= r.readyAt)
    r = { ...r, completedAt: r.readyAt, expiresAt: expiry(r.readyAt, r.days) };
  if (r.expiresAt !== undefined && r.expiresAt <= now) return undefined;
  return r;
}

export function restoreHeader(meta: ObjectMeta, now: number): string | undefined {
  const r = currentRestore(meta, now);
  if (!r) return undefined;
  if (r.completedAt === undefined) return 'ongoing-request="true"';
  return `ongoing-request="false", expiry-date="${httpDate(r.expiresAt!)}"`;
}

export function isReadable(meta: ObjectMeta, now: number): boolean {
  return !ARCHIVED.has(meta.storageClass) || currentRestore(meta, now)?.completedAt !== undefined;
}

interface RestoreRequest {
  days: number;
  tier: Tier;
}

async function readRestoreRequest(ctx: Ctx): Promise<RestoreRequest> {
  const sink = memorySink();
  await receiveBody(ctx.body, planBody(ctx.req), {
    defaultAlgorithm: 'CRC32',
    maxSize: 64 * 1024,
    sink,
  });
  const xml = parseXml(sink.data().toString('utf8'), 'RestoreRequest');
  if (
    xml.Type !== undefined ||
    xml.SelectParameters !== undefined ||
    xml.OutputLocation !== undefined
  )
    throw errors.notImplemented();
  const daysText = text(xml.Days);
  if (daysText === undefined) throw errors.malformedXML();
  const days = Number(daysText);
  if (!/^\d+$/.test(daysText) || days < 1)
    throw invalidArgument('Days must be a positive integer', 'Days', daysText);
  const job = xml.GlacierJobParameters;
  const tierText =
    (job && typeof job === 'object' && !Array.isArray(job) ? text(job.Tier) : undefined) ??
    text(xml.Tier);
  const tier = (tierText ?? 'Standard') as Tier;
  if (!TIERS.includes(tier)) throw errors.malformedXML();
  return { days, tier };
}

/** POST /bucket/key?restore: 202 when started, 200 when already restored (expiry renewed). */
export const restoreObject: Handler = async (ctx) => {
  requireBucket(ctx);
  const request = await readRestoreRequest(ctx);
  const meta = ctx.store.getObject(ctx.bucket, ctx.key);
  if (!meta) throw errors.noSuchKey({ Key: ctx.key });
  if (!ARCHIVED.has(meta.storageClass))
    throw new S3Error(
      403,
      'InvalidObjectState',
      "Restore is not allowed for the object's current storage class",
    );
  if (meta.storageClass === 'DEEP_ARCHIVE' && request.tier === 'Expedited')
    throw invalidArgument(
      'Expedited retrieval is not available for the DEEP_ARCHIVE storage class',
      'Tier',
      'Expedited',
    );
  const now = ctx.options.now();
  const current = currentRestore(meta, now);
  if (current?.completedAt !== undefined) {
    await ctx.store.saveObject(ctx.bucket, {
      ...meta,
      restore: { ...current, days: request.days, expiresAt: expiry(now, request.days) },
    });
    return sendEmpty(ctx, 200);
  }
  if (current && TIERS.indexOf(request.tier) >= TIERS.indexOf(current.tier as Tier))
    throw errors.restoreInProgress();
  const delay = ctx.options.restoreDelay?.(request.tier);
  const restore: RestoreState = {
    days: request.days,
    tier: request.tier,
    requestedAt: current?.requestedAt ?? now,
  };
  if (delay !== undefined) restore.readyAt = now + delay;
  await ctx.store.saveObject(ctx.bucket, { ...meta, restore });
  sendEmpty(ctx, 202);
};

/** Completes the ongoing restores (of one bucket or key if given); returns how many. */
export async function completeRestores(
  store: Store,
  now: number,
  bucket?: string,
  key?: string,
): Promise<number> {
  let done = 0;
  for (const b of store.bucketNames()) {
    if (bucket !== undefined && b !== bucket) continue;
    for (const k of store.keys(b)) {
      if (key !== undefined && k !== key) continue;
      const meta = store.getObject(b, k)!;
      const r = currentRestore(meta, now);
      if (!r || r.completedAt !== undefined) continue;
      await store.saveObject(b, {
        ...meta,
        restore: { ...r, completedAt: now, expiresAt: expiry(now, r.days) },
      });
      done++;
    }
  }
  return done;
}
