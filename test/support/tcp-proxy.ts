import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';

interface Held {
  readonly to: Socket;
  readonly chunk: Buffer;
  /** Sent by the app (towards the dependency), not answered by the dependency. */
  readonly fromApp: boolean;
}

/**
 * A TCP proxy on 127.0.0.1 that can go silent: freeze() stops moving bytes both ways (a dependency
 * that accepts connections but never answers, the worst kind of dead), thaw() lets them flow again,
 * reset() cuts every connection at once (a restart, a failover: the app sees ECONNRESET and must
 * connect again). What the app sent while frozen can be read (heldFromApp()): a test sees from
 * outside which step a process is stuck at.
 */
export class TcpProxy {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private frozen = false;
  private held: Held[] = [];

  private readonly upstreamHost: string;
  private readonly upstreamPort: number;

  private constructor(
    upstreamHost: string,
    upstreamPort: number,
  ) {
    this.upstreamHost = upstreamHost;
    this.upstreamPort = upstreamPort;
    this.server = createServer((client) => this.accept(client));
  }

  static async start(upstreamHost: string, upstreamPort: number): Promise<TcpProxy> {
    const proxy = new TcpProxy(upstreamHost, upstreamPort);
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Connections open through the proxy (each counted once, app side). */
  get connections(): number {
    return Math.floor(this.sockets.size / 2);
  }

  freeze(): void {
    this.frozen = true;
  }

  thaw(): void {
    this.frozen = false;
    for (const { to, chunk } of this.held.splice(0)) if (!to.destroyed) to.write(chunk);
  }

  /**
   * Cuts every open connection with a TCP reset, both sides, and drops the bytes held for them: the
   * app's half-sent statements never arrive. New connections are taken (frozen or not, as before).
   */
  reset(): void {
    this.held = [];
    for (const socket of this.sockets) socket.resetAndDestroy();
  }

  /** What the app sent while frozen and the dependency has not received yet, as text. */
  heldFromApp(): string {
    return Buffer.concat(this.held.filter((held) => held.fromApp).map((held) => held.chunk)).toString('latin1');
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    this.track(client);
    const upstream = connect(this.upstreamPort, this.upstreamHost);
    this.track(upstream);
    this.forward(client, upstream, true);
    this.forward(upstream, client, false);
  }

  /** Bytes that arrive while frozen wait, in order, until thaw() (or are dropped by reset()). */
  private forward(from: Socket, to: Socket, fromApp: boolean): void {
    from.on('data', (chunk: Buffer) => {
      if (this.frozen) this.held.push({ to, chunk, fromApp });
      else to.write(chunk);
    });
    from.on('close', () => to.destroy());
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.sockets.delete(socket));
  }
}

/** A port on 127.0.0.1 where nothing listens (taken, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
