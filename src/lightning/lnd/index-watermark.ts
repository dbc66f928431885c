/**
 * Tracks which of LND's dense, 1-based invoice indexes (add or settle) have been handled, and the
 * highest index below which all have been: the only position it is safe to resume from. LND's
 * catch-up delivers settled invoices out of settle order (first by add index, then by settle
 * index), so "the largest index seen" would skip settlements after a crash.
 */
export class IndexWatermark {
  private readonly above = new Set<number>();

  constructor(private mark: number) {}

  /** Everything at or below this index has been handled. */
  get value(): number {
    return this.mark;
  }

  has(index: number): boolean {
    return index <= this.mark || this.above.has(index);
  }

  /** Records an index; returns false if it was already handled. */
  add(index: number): boolean {
    if (this.has(index)) return false;
    this.above.add(index);
    while (this.above.delete(this.mark + 1)) this.mark += 1;
    return true;
  }
}
