/**
 * The ISO readers our tests use as oracles — 7-Zip (7zz or 7z), bsdtar and xorriso — and
 * helpers around them: write an image to a file, list it, extract it, hash what came out.
 * A missing reader fails the test with what to run; it is never skipped.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, createReadStream, createWriteStream } from 'node:fs';
import { lstat, open, readdir } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import type { IsoPlan } from '../plan.js';
import type { IsoRead } from '../read.js';
import { writeIso, type IsoSource, type WriteIsoOptions } from '../write.js';

const exec = promisify(execFile);

function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** The first of `commands` on PATH; throws, saying what to run, when none is. */
export function requireTool(...commands: string[]): string {
  const found = commands.find(onPath);
  if (found) return found;
  throw new Error(
    `${commands.join(' or ')} is not on PATH: run scripts/install-test-tools.sh (as root it installs 7zip, libarchive-tools and xorriso).`,
  );
}

export async function run(command: string, args: string[]): Promise<string> {
  const { stdout } = await exec(command, args, { maxBuffer: 256 << 20, encoding: 'utf8' });
  return stdout;
}

export async function writeImage(
  plan: IsoPlan,
  source: IsoSource,
  path: string,
  options: WriteIsoOptions = {},
): Promise<void> {
  await pipeline(Readable.from(writeIso(plan, source, options)), createWriteStream(path));
}

/** A random-access read over an image file (for readIso); close it when done. */
export async function fileReader(
  path: string,
): Promise<{ read: IsoRead; close: () => Promise<void> }> {
  const handle = await open(path);
  return {
    read: async (offset, length) => {
      const buf = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buf, 0, length, offset);
      if (bytesRead !== length) throw new Error(`Short read at ${offset}`);
      return buf;
    },
    close: () => handle.close(),
  };
}

export interface Listed {
  path: string;
  directory: boolean;
}

export async function list7z(image: string): Promise<Listed[]> {
  const out = await run(requireTool('7zz', '7z'), ['l', '-slt', '-ba', image]);
  return out
    .split(/\n\s*\n/)
    .map((block) => {
      const field = (name: string): string | undefined =>
        block
          .split('\n')
          .find((l) => l.startsWith(`${name} = `))
          ?.slice(name.length + 3);
      const path = field('Path');
      return path === undefined ? null : { path, directory: field('Folder') === '+' };
    })
    .filter((x): x is Listed => x !== null);
}

export async function extract7z(image: string, dir: string): Promise<void> {
  await run(requireTool('7zz', '7z'), ['x', '-y', `-o${dir}`, image]);
}

/**
 * Paths bsdtar lists (directories end with '/'); '.' (the root) left out. bsdtar -t
 * escapes a backslash as two and unprintable bytes as \ooo: undone here.
 */
export async function listBsdtar(image: string): Promise<Listed[]> {
  const out = await run(requireTool('bsdtar'), ['-tf', image]);
  const unescape = (l: string): string =>
    l.replace(/\\(\\|[0-7]{3})/g, (_, e: string) =>
      e === '\\' ? '\\' : String.fromCharCode(parseInt(e, 8)),
    );
  return out
    .split('\n')
    .filter((l) => l !== '' && l !== '.' && l !== './')
    .map((l) => ({
      path: unescape(l).replace(/^\.\//, '').replace(/\/$/, ''),
      directory: l.endsWith('/'),
    }));
}

export async function extractBsdtar(image: string, dir: string): Promise<void> {
  await run(requireTool('bsdtar'), ['-xf', image, '-C', dir]);
}

export async function extractXorriso(image: string, dir: string): Promise<void> {
  await run(requireTool('xorriso'), ['-osirrox', 'on', '-indev', image, '-extract', '/', dir]);
}

/** xorriso's own quoting of paths: '...' with each ' written as '"'"'. */
function unquoteXorriso(text: string): string {
  return text.slice(1, -1).replaceAll(`'"'"'`, `'`);
}

export interface ReportedExtent {
  lba: number;
  blocks: number;
  /** Bytes of this extent: whole blocks, the last one what is left of the file's size. */
  length: number;
}

/**
 * `xorriso -find / -exec report_lba`: each file's extents (by xorriso's Rock Ridge names).
 * xorriso prints one line per extent with the extent's blocks and the whole file's size.
 */
export async function xorrisoReportLba(image: string): Promise<Map<string, ReportedExtent[]>> {
  const out = await run(requireTool('xorriso'), [
    '-indev',
    image,
    '-find',
    '/',
    '-exec',
    'report_lba',
    '--',
  ]);
  const lines = new Map<string, { lba: number; blocks: number; fileSize: number }[]>();
  for (const line of out.split('\n')) {
    const m = /^File data lba:\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*('.*')$/.exec(
      line,
    );
    if (!m) continue;
    const path = unquoteXorriso(m[5]!).replace(/^\//, '');
    const extents = lines.get(path) ?? [];
    extents[Number(m[1])] = { lba: Number(m[2]), blocks: Number(m[3]), fileSize: Number(m[4]) };
    lines.set(path, extents);
  }
  const files = new Map<string, ReportedExtent[]>();
  for (const [path, extents] of lines) {
    let left = extents[0]!.fileSize;
    files.set(
      path,
      extents.map((x, i) => {
        const length = i < extents.length - 1 ? x.blocks * 2048 : left;
        left -= length;
        return { lba: x.lba, blocks: x.blocks, length };
      }),
    );
  }
  return files;
}

/** Every path xorriso finds, directories with their type. */
export async function listXorriso(image: string): Promise<Listed[]> {
  const all = await run(requireTool('xorriso'), ['-indev', image, '-find', '/']);
  const dirs = new Set(
    (await run(requireTool('xorriso'), ['-indev', image, '-find', '/', '-type', 'd']))
      .split('\n')
      .filter((l) => l.startsWith("'")),
  );
  return all
    .split('\n')
    .filter((l) => l.startsWith("'") && l !== "'/'")
    .map((l) => ({ path: unquoteXorriso(l).replace(/^\//, ''), directory: dirs.has(l) }));
}

export interface Extracted {
  directory: boolean;
  size: number;
  sha256?: string;
  mode: number;
  mtimeMs: number;
}

/** What is under `dir`: each path's type, size, SHA-256 (files), permission bits and mtime. */
export async function hashTree(dir: string): Promise<Map<string, Extracted>> {
  const out = new Map<string, Extracted>();
  const visit = async (rel: string): Promise<void> => {
    for (const name of await readdir(join(dir, rel))) {
      const path = rel === '' ? name : `${rel}/${name}`;
      const st = await lstat(join(dir, path));
      const base = { size: st.size, mode: st.mode & 0o7777, mtimeMs: st.mtimeMs };
      if (st.isDirectory()) {
        out.set(path, { directory: true, ...base });
        await visit(path);
      } else {
        out.set(path, { directory: false, ...base, sha256: await hashFile(join(dir, path)) });
      }
    }
  };
  await visit('');
  return out;
}

export async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }))
    hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** SHA-256 and length of what `command args` writes to stdout (for extracting to stdout). */
export async function hashStdout(
  command: string,
  args: string[],
): Promise<{ sha256: string; bytes: number }> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const hash = createHash('sha256');
  let bytes = 0;
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  for await (const chunk of child.stdout) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  const code = await exited;
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${code}: ${stderr}`);
  return { sha256: hash.digest('hex'), bytes };
}
