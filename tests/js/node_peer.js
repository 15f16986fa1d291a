'use strict';
// A Node Socket.IO server with the official @socket.io/redis-adapter, sharing rooms with Nexus
// processes on the same Redis and key, plus one socket.io-client of its own on it.
// Driven by tests/e2e/test_redis_cluster.py:
//   node node_peer.js <redis url> <key> <port> <room the own client joins>
// Prints JSON lines: {"type":"ready"}, {"type":"event", event, args} (what the own client
// receives on /chat), {"type":"fetched", ids, rooms}. Commands on stdin, JSON lines:
//   {"cmd":"emit","room":r,"event":e,"args":[...]}   io.of('/chat').to(r).emit(e, ...args)
//   {"cmd":"fetch","room":r}                         io.of('/chat').in(r).fetchSockets()
const http = require('http');
const readline = require('readline');
const { createClient } = require('redis');
const { Server } = require('socket.io');
const { createAdapter } = require('@socket.io/redis-adapter');
const { io: connect } = require('socket.io-client');

const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

async function main() {
  const [url, key, port, room] = process.argv.slice(2);
  const pub = createClient({ url });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  const server = http.createServer();
  const io = new Server(server, { adapter: createAdapter(pub, sub, { key, requestsTimeout: 3000 }) });
  const chat = io.of('/chat');
  chat.on('connection', (socket) => socket.join(room));
  await new Promise((resolve) => server.listen(Number(port), '127.0.0.1', resolve));
  const client = connect(`http://127.0.0.1:${port}/chat`, { transports: ['websocket'] });
  client.onAny((event, ...args) => out({ type: 'event', event, args }));
  await new Promise((resolve) => client.on('connect', resolve));
  await new Promise((resolve) => setTimeout(resolve, 300));   // the adapter's SUBSCRIBEs
  out({ type: 'ready', id: client.id });

  readline.createInterface({ input: process.stdin }).on('line', async (line) => {
    const command = JSON.parse(line);
    try {
      if (command.cmd === 'emit') {
        chat.to(command.room).emit(command.event, ...command.args);
        out({ type: 'emitted' });
      } else if (command.cmd === 'fetch') {
        const sockets = await chat.in(command.room).fetchSockets();
        out({ type: 'fetched', ids: sockets.map((s) => s.id), rooms: sockets.map((s) => [...s.rooms]) });
      }
    } catch (err) {
      out({ type: 'error', message: String(err && err.message) });
    }
  });
  process.stdin.on('end', async () => {
    client.close();
    io.close();
    await Promise.allSettled([pub.quit(), sub.quit()]);
    process.exit(0);
  });
}

main().catch((err) => { console.error(err); process.exit(1); });
