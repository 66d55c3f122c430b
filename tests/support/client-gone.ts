/**
 * Resolves once the client of a request has gone away. A killed client's kernel closes
 * its end with a FIN (or a RST when data was left unread). When the FIN cuts a request
 * body short, Node's HTTP server keeps the socket half open (a response is still owed),
 * so 'close' never comes for a request held unanswered; its 'end' does. (The staging kill
 * test waited for such a request in CI under load: a part cut off part-way.)
 */
import type { Socket } from 'node:net';

export function clientGone(socket: Socket): Promise<void> {
  if (socket.destroyed || socket.readableEnded) return Promise.resolve();
  return new Promise((resolve) => {
    socket.once('close', () => resolve());
    socket.once('end', () => resolve());
  });
}
