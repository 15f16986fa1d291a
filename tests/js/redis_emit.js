'use strict';
// Emits one event through the official @socket.io/redis-emitter, as a Node service of a
// Socket.IO cluster would. Driven by tests/e2e/test_redis_cluster.py:
//   node redis_emit.js <redis url> <key> <namespace> <room> <event> <payload JSON>
// The payload gains `sentAt` (a JS Date) and `missing` (undefined): notepack's extension types.
const { createClient } = require('redis');
const { Emitter } = require('@socket.io/redis-emitter');

async function main() {
  const [url, key, nsp, room, event, json] = process.argv.slice(2);
  const client = createClient({ url });
  await client.connect();
  const payload = { ...JSON.parse(json), sentAt: new Date(Date.UTC(2026, 10, 30, 12, 0, 0, 250)), missing: undefined };
  new Emitter(client, { key }).of(nsp).to(room).emit(event, payload, [1, undefined, 'x']);
  await client.quit();
}

main().catch((err) => { console.error(err); process.exit(1); });
