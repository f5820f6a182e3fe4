import { createServer, type AddressInfo } from 'node:net';

/** A TCP port on 127.0.0.1 where nothing listens right now (taken, then released), for a process that is told its port. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
