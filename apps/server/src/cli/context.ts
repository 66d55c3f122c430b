/** What every command that touches the database needs: see app/compose.ts. */
import { openContext, type Context } from '../app/compose.js';

export { openContext, type Context };

/** Runs `use` with a context and always closes the database. */
export async function withContext<T>(
  dataDir: string,
  use: (ctx: Context) => Promise<T>,
): Promise<T> {
  const ctx = await openContext(dataDir);
  try {
    return await use(ctx);
  } finally {
    await ctx.db.close();
  }
}
