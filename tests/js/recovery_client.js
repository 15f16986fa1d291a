'use strict';
// The official socket.io-client v4 with its default options (reconnection on) against a
// server with connection-state recovery, driven by tests/e2e/test_recovery.py:
//   node recovery_client.js <base url> <token> [reconnection delay ms]
// Prints one JSON line per happening: connect (with socket.id, socket.recovered and the pid),
// disconnect, every event with all its arguments (the offset is the last one). Commands on
// stdin: {"cmd": "drop"} closes the Engine.IO connection as a network loss would (the client
// then reconnects by itself); {"cmd": "hold"} does the same with reconnection off, and
// {"cmd": "resume"} then reconnects (the test decides when); {"cmd": "send", "data": {…}}
// emits sendMessage and prints its ack; {"cmd": "close"} disconnects on purpose and exits.
const readline = require('readline');
const { io } = require('socket.io-client');

const [url, token, delay] = process.argv.slice(2);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const options = { auth: { token } };
if (delay) Object.assign(options, { reconnectionDelay: Number(delay), reconnectionDelayMax: Number(delay), randomizationFactor: 0 });
const socket = io(`${url}/chat`, options);

socket.on('connect', () => out({ type: 'connect', id: socket.id, recovered: socket.recovered, pid: socket._pid }));
socket.on('connect_error', (err) => out({ type: 'connect_error', message: err.message }));
socket.on('disconnect', (reason) => out({ type: 'disconnect', reason }));
socket.onAny((event, ...args) => out({ type: 'event', event, args }));

const input = readline.createInterface({ input: process.stdin });
input.on('line', (line) => {
  if (!line.trim()) return;
  const command = JSON.parse(line);
  if (command.cmd === 'drop') socket.io.engine.close();
  if (command.cmd === 'send') socket.emit('sendMessage', command.data, (ack) => out({ type: 'ack', ack }));
  if (command.cmd === 'hold') { socket.io.reconnection(false); socket.io.engine.close(); }
  if (command.cmd === 'resume') { socket.io.reconnection(true); socket.io.open(); }
  if (command.cmd === 'close') { socket.disconnect(); process.exit(0); }
});
input.on('close', () => { socket.disconnect(); process.exit(0); });
