'use strict';
// The official socket.io-client v4, with its DEFAULT options (HTTP long-polling first, then
// the upgrade to WebSocket), against a live Nexus Chat server. Driven by
// tests/e2e/test_chat_js_client.py:
//   node chat_client.js <base url> [token]        (or NEXUS_URL / NEXUS_TOKEN)
// NEXUS_LOCAL_ADDRESS=127.0.0.x: connect from that address (both transports), so that an nginx
// sticky by client address sees a client of its own (tests/e2e/test_cluster_nginx.py).
// Prints one JSON object per line for everything that happens (connect, upgrade, every
// event received, acks, errors). Reads commands as JSON lines on stdin:
//   {"cmd": "emit", "id": 1, "event": "sendMessage", "payload": {...}}  -> emitWithAck
//   {"cmd": "close"}                                                    -> disconnect, exit
const readline = require('readline');
const { io } = require('socket.io-client');

const url = process.argv[2] || process.env.NEXUS_URL;
const token = process.argv[3] || process.env.NEXUS_TOKEN;
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

const localAddress = process.env.NEXUS_LOCAL_ADDRESS;
const bound = localAddress
  ? { localAddress, agent: new (require('http').Agent)({ keepAlive: true, localAddress }) }
  : {};
const socket = io(`${url}/chat`, { auth: token ? { token } : {}, reconnection: false, ...bound });

socket.io.on('open', () => {
  out({ type: 'open', transport: socket.io.engine.transport.name });
  socket.io.engine.once('upgrade', (transport) => out({ type: 'upgrade', transport: transport.name }));
});
socket.on('connect', () => out({ type: 'connect', id: socket.id, transport: socket.io.engine.transport.name }));
socket.on('connect_error', (err) => out({ type: 'connect_error', message: err.message }));
socket.on('disconnect', (reason) => out({ type: 'disconnect', reason }));
socket.onAny((event, ...args) => out({ type: 'event', event, args }));

async function run(command) {
  if (command.cmd === 'close') {
    socket.disconnect();
    out({ type: 'closed' });
    process.exit(0);
  }
  if (command.cmd === 'emit') {
    try {
      const ack = await socket.timeout(5000).emitWithAck(command.event, command.payload);
      out({ type: 'ack', id: command.id, ack });
    } catch (err) {
      out({ type: 'ack_error', id: command.id, message: String(err && err.message) });
    }
  }
}

const input = readline.createInterface({ input: process.stdin });
input.on('line', (line) => {
  if (line.trim()) run(JSON.parse(line));
});
input.on('close', () => {
  socket.disconnect();
  process.exit(0);
});
