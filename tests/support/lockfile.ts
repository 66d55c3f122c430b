/**
 * What `npm install <workspace package>` would install, read from package-lock.json:
 * the package's dependencies, optional dependencies and required (non-optional) peer
 * dependencies, transitively, each resolved the way Node and npm resolve it (the
 * nearest node_modules up the tree). devDependencies and optional peers are left out,
 * as npm leaves them out of a published package's install.
 */
import { readFileSync } from 'node:fs';

interface LockEntry {
  name?: string;
  link?: boolean;
  resolved?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

export interface Lockfile {
  packages: Record<string, LockEntry>;
}

export const readLockfile = (path: string): Lockfile =>
  JSON.parse(readFileSync(path, 'utf8')) as Lockfile;

/** The lockfile path `name` resolves to from the package at `from`, or undefined. */
function resolveFrom(lock: Lockfile, from: string, name: string): string | undefined {
  const parts = from === '' ? [] : from.split('/');
  for (let i = parts.length; i >= 0; i--) {
    if (i > 0 && parts[i - 1] === 'node_modules') continue;
    const base = parts.slice(0, i).join('/');
    const candidate = `${base === '' ? '' : `${base}/`}node_modules/${name}`;
    if (lock.packages[candidate]) return candidate;
  }
  return undefined;
}

function requiredEdges(entry: LockEntry): { name: string; optional: boolean }[] {
  const optionalPeer = (n: string) => entry.peerDependenciesMeta?.[n]?.optional === true;
  return [
    ...Object.keys(entry.dependencies ?? {}).map((name) => ({ name, optional: false })),
    ...Object.keys(entry.optionalDependencies ?? {}).map((name) => ({ name, optional: true })),
    ...Object.keys(entry.peerDependencies ?? {})
      .filter((name) => !optionalPeer(name))
      .map((name) => ({ name, optional: false })),
  ];
}

/** Package names in the production install of the workspace at `workspace` ("apps/agent"). */
export function productionDependencies(lock: Lockfile, workspace: string): Set<string> {
  const names = new Set<string>();
  const seen = new Set<string>();
  const visit = (path: string) => {
    const target = lock.packages[path]?.link ? lock.packages[path]!.resolved! : path;
    if (seen.has(target)) return;
    seen.add(target);
    const entry = lock.packages[target];
    if (!entry) throw new Error(`package-lock.json has no entry for ${target}`);
    for (const edge of requiredEdges(entry)) {
      const found = resolveFrom(lock, target, edge.name);
      if (!found) {
        if (edge.optional) continue;
        throw new Error(`${edge.name}, needed by ${target}, is not in package-lock.json`);
      }
      names.add(edge.name);
      visit(found);
    }
  };
  visit(workspace);
  return names;
}
