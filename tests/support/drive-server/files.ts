/** File metadata: the resource Drive answers with, and what clients may write. */
import { errors } from './errors.js';
import { checkNames, parseFields, pick } from './fields.js';
import { FOLDER_MIME, type DiskState, type FileMeta, type NewFile } from './state.js';

/** Fields of the file resource this server knows (a subset of Drive's). */
export const FILE_FIELDS: ReadonlySet<string> = new Set([
  'kind',
  'id',
  'name',
  'mimeType',
  'parents',
  'appProperties',
  'properties',
  'description',
  'trashed',
  'explicitlyTrashed',
  'createdTime',
  'modifiedTime',
  'size',
  'quotaBytesUsed',
  'md5Checksum',
  'sha1Checksum',
  'sha256Checksum',
  'ownedByMe',
  'starred',
  'spaces',
]);

const WRITABLE = new Set([
  'name',
  'mimeType',
  'parents',
  'appProperties',
  'properties',
  'description',
  'trashed',
]);
const DEFAULT_FIELDS = 'kind,id,name,mimeType';
/** Drive's limit: a property's key and value together take at most 124 bytes of UTF-8. */
const PROPERTY_BYTES = 124;

export function resource(f: FileMeta): Record<string, unknown> {
  const hasContent = f.size !== undefined;
  return {
    kind: 'drive#file',
    id: f.id,
    name: f.name,
    mimeType: f.mimeType,
    parents: f.parents.length > 0 ? f.parents : undefined,
    appProperties: Object.keys(f.appProperties).length > 0 ? f.appProperties : undefined,
    properties: Object.keys(f.properties).length > 0 ? f.properties : undefined,
    description: f.description,
    trashed: f.trashed,
    explicitlyTrashed: f.trashed,
    createdTime: f.createdTime,
    modifiedTime: f.modifiedTime,
    size: hasContent ? String(f.size) : undefined,
    quotaBytesUsed: String(f.size ?? 0),
    md5Checksum: f.md5Checksum,
    sha1Checksum: f.sha1Checksum,
    sha256Checksum: f.sha256Checksum,
    ownedByMe: true,
    starred: false,
    spaces: ['drive'],
  };
}

/** A file rendered with a request's `fields` (Drive's default when none is given). */
export function render(f: FileMeta, fields: string | null | undefined): unknown {
  const sel = parseFields(fields || DEFAULT_FIELDS);
  checkNames(sel, FILE_FIELDS);
  return pick(resource(f), sel);
}

function stringMap(value: unknown, what: string): Record<string, string | null> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw errors.badRequest(`Invalid value for ${what}: an object of strings is expected.`);
  }
  const out: Record<string, string | null> = {};
  for (const [k, v] of Object.entries(value)) {
    if (v !== null && typeof v !== 'string')
      throw errors.badRequest(`Invalid value for ${what}.${k}.`);
    if (Buffer.byteLength(k) + Buffer.byteLength(v ?? '') > PROPERTY_BYTES) {
      throw errors.badRequest(
        `The size of ${what}.${k} exceeds ${PROPERTY_BYTES} bytes (key and value).`,
      );
    }
    out[k] = v;
  }
  return out;
}

function dropNulls(m: Record<string, string | null>): Record<string, string> {
  return Object.fromEntries(Object.entries(m).filter((e): e is [string, string] => e[1] !== null));
}

/** A folder the client may put files in ('root' is My Drive). */
export function folderId(state: DiskState, id: string): string {
  const real = id === 'root' ? state.rootId : id;
  const f = state.files.get(real);
  if (!f || f.mimeType !== FOLDER_MIME) throw errors.fileNotFound(id);
  return real;
}

function checkWritable(body: Record<string, unknown>): void {
  for (const key of Object.keys(body)) {
    if (FILE_FIELDS.has(key) && !WRITABLE.has(key)) throw errors.fieldNotWritable();
  }
}

/** Validates the metadata of files.create (metadata-only or with an upload). */
export function newFile(
  state: DiskState,
  body: Record<string, unknown>,
  mediaType?: string,
): NewFile {
  checkWritable(body);
  const parents = body.parents ?? ['root'];
  if (!Array.isArray(parents) || parents.some((p) => typeof p !== 'string')) {
    throw errors.badRequest('Invalid value for parents: a list of ids is expected.');
  }
  if (parents.length > 1) throw errors.cannotAddParent();
  const str = (key: string): string | undefined => {
    const v = body[key];
    if (v !== undefined && typeof v !== 'string')
      throw errors.badRequest(`Invalid value for ${key}.`);
    return v;
  };
  return {
    name: str('name') ?? 'Untitled',
    mimeType: str('mimeType') ?? mediaType ?? 'application/octet-stream',
    parents: (parents as string[]).map((p) => folderId(state, p)),
    appProperties: dropNulls(stringMap(body.appProperties ?? {}, 'appProperties')),
    properties: dropNulls(stringMap(body.properties ?? {}, 'properties')),
    description: str('description'),
  };
}

/** Applies a files.update (PATCH) body and addParents/removeParents to a file. */
export function applyPatch(
  state: DiskState,
  f: FileMeta,
  body: Record<string, unknown>,
  url: URL,
): FileMeta {
  checkWritable(body);
  if (body.parents !== undefined) throw errors.fieldNotWritable();
  const next: FileMeta = { ...f, modifiedTime: new Date().toISOString() };
  if (typeof body.name === 'string') next.name = body.name;
  if (typeof body.description === 'string') next.description = body.description;
  if (typeof body.trashed === 'boolean') next.trashed = body.trashed;
  for (const key of ['appProperties', 'properties'] as const) {
    if (body[key] === undefined) continue;
    next[key] = dropNulls({ ...f[key], ...stringMap(body[key], key) });
  }
  const remove = (url.searchParams.get('removeParents') ?? '').split(',').filter(Boolean);
  const add = (url.searchParams.get('addParents') ?? '').split(',').filter(Boolean);
  next.parents = next.parents.filter((p) => !remove.map((r) => folderId(state, r)).includes(p));
  for (const a of add) next.parents.push(folderId(state, a));
  if (next.parents.length > 1) throw errors.cannotAddParent();
  return next;
}
