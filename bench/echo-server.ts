/**
 * A bare Node HTTP server on a Unix socket that answers every POST with `{"Err":""}`: the floor under
 * ferry's plugin latency on this machine at this moment (same runtime, no express, no SQLite, no logs).
 * Run as its own process: `node dist/bench/echo-server.js SOCKET`.
 */
import { unlinkSync, existsSync } from 'node:fs';
import { createServer } from 'node:http';

const socket = process.argv[2];
if (!socket) {
  process.stderr.write('usage: echo-server SOCKET\n');
  process.exit(2);
}
if (existsSync(socket)) unlinkSync(socket);
const body = '{"Err":""}';
const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  });
});
server.listen(socket, () => process.stdout.write('listening\n'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
