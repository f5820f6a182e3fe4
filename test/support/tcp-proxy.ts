import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 that can go silent: freeze() stops moving bytes both ways (a dependency
 * that accepts connections but never answers, the worst kind of dead), thaw() lets them flow again.
 */
export class TcpProxy {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private frozen = false;
  private readonly held: (() => void)[] = [];

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

  freeze(): void {
    this.frozen = true;
  }

  thaw(): void {
    this.frozen = false;
    for (const flush of this.held.splice(0)) flush();
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    this.track(client);
    const upstream = connect(this.upstreamPort, this.upstreamHost);
    this.track(upstream);
    this.forward(client, upstream);
    this.forward(upstream, client);
  }

  /** Bytes that arrive while frozen wait, in order, until thaw(). */
  private forward(from: Socket, to: Socket): void {
    from.on('data', (chunk: Buffer) => {
      if (this.frozen) this.held.push(() => to.write(chunk));
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
