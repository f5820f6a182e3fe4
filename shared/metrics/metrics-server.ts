import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../logger.ts';
import type { ProcessMetrics } from './process-metrics.ts';

export interface MetricsServer {
  /** The address it listens on (127.0.0.1 unless METRICS_HOST says otherwise). */
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * The processes without an HTTP API (worker, notifier, scheduler) expose their metrics here:
 * GET /metrics for Prometheus, GET /healthz for a liveness probe. It binds METRICS_HOST
 * (127.0.0.1 by default), not the web's HOST: metrics name queues, zones and error rates, for a
 * scraper on the machine or one let in on purpose, not for whoever reaches the port.
 */
export async function serveMetrics(metrics: ProcessMetrics, opts: { port: number; host: string; logger: Logger }): Promise<MetricsServer> {
  const server: Server = createServer((request, response) => {
    if (request.method === 'GET' && request.url === '/metrics') {
      metrics.registry.metrics().then(
        (text) => response.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        (error: unknown) => {
          opts.logger.warn({ err: error }, 'metrics could not be collected');
          response.writeHead(500, { 'content-type': 'application/json' }).end('{"code":"INTERNAL_ERROR","message":"metrics failed"}');
        },
      );
      return;
    }
    if (request.method === 'GET' && request.url === '/healthz') {
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      return;
    }
    response.writeHead(404, { 'content-type': 'application/json' }).end('{"code":"ROUTE_NOT_FOUND","message":"GET /metrics or /healthz"}');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, resolve);
  });
  const { address, port, family } = server.address() as AddressInfo;
  opts.logger.info({ host: address, port }, `metrics at http://${family === 'IPv6' ? `[${address}]` : address}:${port}/metrics`);
  return {
    host: address,
    port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
