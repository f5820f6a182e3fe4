/** The start and stop of the intake bench's own baseline servers (naive, hello). */

/**
 * Listens, then prints "listening on http://host:port" on stdout (the bench's ready line, whatever
 * LOG_LEVEL says). On SIGTERM or SIGINT: closes the app, then whatever close() closes, and exits 0
 * (1 if that fails or takes over 10 s).
 */
export async function serveUntilSignal(
  app: { close(): PromiseLike<unknown>; listen(opts: { port: number; host: string }): Promise<string> },
  opts: { name: string; port: number; host: string; close?: () => Promise<void> },
): Promise<void> {
  let closing = false;
  async function shutdown(): Promise<void> {
    if (closing) return;
    closing = true;
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    try {
      await app.close();
      await opts.close?.();
      process.exit(0);
    } catch (error) {
      console.error(`${opts.name}: shutdown failed`, error);
      process.exit(1);
    }
  }
  process.on('SIGTERM', () => void shutdown());
  process.on('SIGINT', () => void shutdown());

  const address = await app.listen({ port: opts.port, host: opts.host });
  console.log(`listening on ${address}`);
}
