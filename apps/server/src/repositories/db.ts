/**
 * What repositories run their SQL on: the pool, or a transaction a caller opened, so
 * that a service can make changes through several repositories in one transaction
 * (`repositoriesOf(tx)` in the composition root; the job queue takes one the same way).
 */
import type { Sql, TransactionSql } from 'postgres';

export type Db = Sql | TransactionSql;

/**
 * Runs `work` atomically: in a new transaction on the pool, or in a savepoint of the
 * caller's transaction (rolled back alone if `work` throws).
 */
export function atomically<T>(db: Db, work: (tx: TransactionSql) => Promise<T>): Promise<T> {
  return ('savepoint' in db ? db.savepoint(work) : db.begin(work)) as Promise<T>;
}
