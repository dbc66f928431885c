/**
 * The requests of each service being forwarded right now (the load that priority prices read).
 * Only services with requests in flight have an entry, so it holds at most the catalog's services.
 */
export class LoadTracker {
  private readonly inFlight = new Map<string, number>();

  enter(service: string): void {
    this.inFlight.set(service, (this.inFlight.get(service) ?? 0) + 1);
  }

  leave(service: string): void {
    const n = (this.inFlight.get(service) ?? 0) - 1;
    if (n > 0) this.inFlight.set(service, n);
    else this.inFlight.delete(service);
  }

  of(service: string): number {
    return this.inFlight.get(service) ?? 0;
  }
}
