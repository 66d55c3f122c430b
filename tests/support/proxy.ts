/** A loopback TCP proxy that counts the bytes clients send through it. */
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface CountingProxy {
  port: number;
  /** Bytes received from clients so far. */
  sent(): number;
  close(): Promise<void>;
}

export async function countingProxy(upstreamPort: number, listenPort = 0): Promise<CountingProxy> {
  let sent = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(upstreamPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    client.on('data', (d) => (sent += d.byteLength));
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => server.listen(listenPort, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    sent: () => sent,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
