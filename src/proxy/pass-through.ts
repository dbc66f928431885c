import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';

/**
 * What the proxy does with an upstream answer passed through untouched: its head, once the
 * status and headers are known (a promise when it must wait first, e.g. for a charge to be
 * durable: the body is held until then), and a failure before any of it (no head was written).
 */
export interface PassThroughRoute {
  head(status: number, headers: IncomingHttpHeaders): void | Promise<void>;
  failed(err: Error): void;
  /** A failed head (the client is then cut off; the upstream request is stopped). */
  broken(err: unknown): void;
}

/** Body bytes held while the head waits, before the upstream is paused. */
const HOLD_BYTES = 64 * 1024;

/**
 * An undici dispatch handler that writes an upstream response straight into the client's
 * response: no body stream of its own, no pipe. While the head waits, the body's first bytes are
 * held (the upstream is paused beyond `HOLD_BYTES`); later, the upstream is paused while the client
 * does not drain. `abort` stops the upstream request (the client went away), also before the
 * request was sent.
 */
export class PassThrough implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;
  private aborted = false;
  private started = false;
  /** The body received while the head waits; undefined once the head is written. */
  private held: Buffer[] | undefined;
  private heldBytes = 0;
  private ended = false;
  private readonly resume = (): void => this.controller?.resume();

  constructor(
    private readonly res: ServerResponse,
    private readonly route: PassThroughRoute,
  ) {}

  /** Stops the upstream request (now, or as soon as it starts). */
  abort(): void {
    this.aborted = true;
    this.controller?.abort(new Error('the client went away'));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.aborted) controller.abort(new Error('the client went away'));
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    status: number,
    headers: IncomingHttpHeaders,
  ): void {
    // Informational answers (103 Early Hints) are not passed on; the final one follows.
    if (status < 200) return;
    this.started = true;
    let pending: void | Promise<void>;
    try {
      pending = this.route.head(status, headers);
    } catch (err) {
      return this.break(controller, err);
    }
    if (pending === undefined) return;
    this.held = [];
    pending.then(
      () => this.release(controller),
      (err: unknown) => this.break(controller, err),
    );
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.held !== undefined) {
      this.held.push(chunk);
      this.heldBytes += chunk.length;
      if (this.heldBytes > HOLD_BYTES) controller.pause();
      return;
    }
    const res = this.res;
    if (!res.destroyed && !res.write(chunk)) this.wait(controller);
  }

  onResponseEnd(): void {
    // Nothing more to stop: the finished request is not kept alive through this handler.
    this.controller = undefined;
    if (this.held !== undefined) this.ended = true;
    else if (!this.res.destroyed) this.res.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.controller = undefined;
    this.held = undefined;
    if (!this.started) return this.route.failed(err);
    // Cut off mid-body: the client sees an incomplete response, never a wrong one.
    this.res.destroy();
  }

  /** The client's buffer is full: the upstream waits until it drains. */
  private wait(controller: Dispatcher.DispatchController): void {
    controller.pause();
    this.res.once('drain', this.resume);
  }

  /** The head is written: what was held goes out, then the body flows. */
  private release(controller: Dispatcher.DispatchController): void {
    const held = this.held;
    if (held === undefined) return; // failed meanwhile
    this.held = undefined;
    const res = this.res;
    if (res.destroyed) return;
    let flowing = true;
    for (const chunk of held) flowing = res.write(chunk) && flowing;
    if (this.ended) res.end();
    else if (flowing) controller.resume();
    else this.wait(controller);
  }

  private break(controller: Dispatcher.DispatchController, err: unknown): void {
    this.held = undefined;
    this.route.broken(err);
    this.res.destroy();
    controller.abort(err instanceof Error ? err : new Error(String(err)));
  }
}
