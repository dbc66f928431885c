import { useEffect, useState } from 'preact/hooks';
import { ApiError } from './api.js';

/** Runs an action, showing its error instead of throwing. */
export function useAction(): [string | undefined, (f: () => Promise<unknown>) => Promise<void>] {
  const [error, setError] = useState<string>();
  const run = async (f: () => Promise<unknown>) => {
    setError(undefined);
    try {
      await f();
    } catch (e) {
      setError(e instanceof ApiError ? `${e.code}: ${e.message}` : String(e));
    }
  };
  return [error, run];
}

export const Err = ({ error }: { error: string | undefined }) =>
  error ? (
    <p class="error" role="alert">
      {error}
    </p>
  ) : null;

/**
 * A list paged on the server: `load(cursor)` returns a page and the cursor of the next one; the
 * console keeps the cursors of the pages before for "Previous".
 */
export function usePaged<T>(
  load: (cursor?: string) => Promise<{ items: T[]; next?: string }>,
  deps: unknown[],
) {
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const [page, setPage] = useState<{ items: T[]; next?: string }>({ items: [] });
  const [error, run] = useAction();
  const cursor = cursors[cursors.length - 1];
  const reload = () => run(async () => setPage(await load(cursor)));
  useEffect(() => void reload(), [cursor, ...deps]);
  const pager = (
    <div class="pager">
      <button disabled={cursors.length < 2} onClick={() => setCursors(cursors.slice(0, -1))}>
        Previous
      </button>
      <span>page {cursors.length}</span>
      <button disabled={page.next === undefined} onClick={() => setCursors([...cursors, page.next])}>
        Next
      </button>
    </div>
  );
  return { items: page.items, error, pager, reload };
}
