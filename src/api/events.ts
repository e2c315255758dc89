// A running job's progress as a stream of events: `for await (const e of run)` reads them as they
// come, `await run.done` (or `await run`) gives the result; events not read are buffered.

/** What a training run reports while it runs. */
export type TrainEvent =
  /** A line of the run's log: data report, notices, formatted metrics. */
  | { type: 'log'; message: string }
  /** An optimizer step finished: its number (1-based), the run's total and the step's loss. */
  | { type: 'step'; step: number; total: number; loss: number }
  /** A metrics line with TRL's names (loss, rewards/margins, ...; eval_* on held-out data; the last has train_loss). */
  | { type: 'metrics'; metrics: Record<string, number> };

/**
 * A job that reports events while it runs: async-iterable over its events, and awaitable (thenable)
 * for its result. Iterating ends when the job ends; a failed job throws from the iterator and from
 * `done`.
 */
export class Run<E, R> implements AsyncIterable<E>, PromiseLike<R> {
  /** The result, once the job has finished. */
  readonly done: Promise<R>;
  private readonly queue: E[] = [];
  private wake: (() => void) | null = null;
  private finished = false;
  private failure: unknown = null;
  private readonly listeners: ((e: E) => void)[] = [];

  /** Starts `job`, which reports through the `emit` it is given. */
  constructor(job: (emit: (e: E) => void) => Promise<R>) {
    this.done = job((e) => this.push(e)).then(
      (r) => {
        this.end(null);
        return r;
      },
      (err) => {
        this.end(err ?? new Error('run failed'));
        throw err;
      },
    );
    this.done.catch(() => {}); // reported through the iterator or whoever awaits `done`
  }

  /** Calls `fn` with every later event (in addition to the iterator). */
  onEvent(fn: (e: E) => void): this {
    this.listeners.push(fn);
    return this;
  }

  then<A = R, B = never>(
    ok?: ((r: R) => A | PromiseLike<A>) | null,
    fail?: ((e: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return this.done.then(ok, fail);
  }

  /** The events in order, from the first; ends with the job (throwing its error if it failed). */
  async *[Symbol.asyncIterator](): AsyncIterator<E> {
    for (;;) {
      if (this.queue.length > 0) {
        yield this.queue.shift()!;
        continue;
      }
      if (this.finished) {
        if (this.failure !== null) throw this.failure;
        return;
      }
      await new Promise<void>((r) => {
        this.wake = r;
      });
    }
  }

  private push(e: E): void {
    for (const fn of this.listeners) fn(e);
    this.queue.push(e);
    this.wake?.();
    this.wake = null;
  }

  private end(err: unknown): void {
    this.finished = true;
    this.failure = err;
    this.wake?.();
    this.wake = null;
  }
}
