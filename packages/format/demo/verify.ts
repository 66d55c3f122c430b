/** Compares two directory trees: kinds, contents, permission bits, mtimes, link targets. */
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';

export async function compareTrees(a: string, b: string): Promise<string[]> {
  const problems: string[] = [];
  async function walk(rel: string): Promise<void> {
    const [sa, sb] = await Promise.all([
      lstat(join(a, rel), { bigint: true }),
      lstat(join(b, rel), { bigint: true }).catch(() => null),
    ]);
    const where = rel || '.';
    if (!sb) return void problems.push(`${where}: missing from the restore`);
    if (
      sa.isDirectory() !== sb.isDirectory() ||
      sa.isFile() !== sb.isFile() ||
      sa.isSymbolicLink() !== sb.isSymbolicLink()
    ) {
      return void problems.push(`${where}: different kind of entry`);
    }
    if (!sa.isSymbolicLink() && (sa.mode & 0o7777n) !== (sb.mode & 0o7777n))
      problems.push(`${where}: mode differs`);
    // Restores set times through utimes (microseconds); compare at that precision.
    // The snapshot root has no entry of its own, so its times are not restored.
    if (rel !== '' && sa.mtimeNs / 1000n !== sb.mtimeNs / 1000n)
      problems.push(`${where}: mtime differs`);
    if (sa.isSymbolicLink()) {
      if ((await readlink(join(a, rel))) !== (await readlink(join(b, rel))))
        problems.push(`${where}: link target differs`);
    } else if (sa.isFile()) {
      const hash = async (p: string) =>
        createHash('sha256')
          .update(await readFile(p))
          .digest('hex');
      if ((await hash(join(a, rel))) !== (await hash(join(b, rel))))
        problems.push(`${where}: contents differ`);
    } else {
      const [ea, eb] = await Promise.all([readdir(join(a, rel)), readdir(join(b, rel))]);
      for (const extra of eb.filter((n) => !ea.includes(n)))
        problems.push(`${join(where, extra)}: not in the original`);
      for (const name of ea.sort()) await walk(join(rel, name));
    }
  }
  await walk('');
  return problems;
}
