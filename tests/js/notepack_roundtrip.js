'use strict';
// notepack.io (the codec of @socket.io/redis-adapter) on both sides of tests/e2e/test_notepack_interop.py:
//   node notepack_roundtrip.js encode   -> hex of a fixed value with a Date and undefined
//   node notepack_roundtrip.js decode <hex> -> what notepack reads, as JSON with Dates tagged
const notepack = require('notepack.io');

const [mode, hex] = process.argv.slice(2);
if (mode === 'encode') {
  const value = ['uid1', { type: 2, data: ['ev', { at: new Date(Date.UTC(2026, 10, 30, 12, 0, 0, 250)),
    gone: undefined, n: 1.5, big: 2 ** 40, text: 'héllo' }, [undefined, null]], nsp: '/chat' },
  { rooms: ['group:1'], except: [], flags: {} }];
  process.stdout.write(notepack.encode(value).toString('hex'));
} else {
  const tag = (v) => v instanceof Date ? { $date: v.getTime() } : Buffer.isBuffer(v) ? { $bin: [...v] }
    : v === undefined ? { $undefined: true }
      : Array.isArray(v) ? v.map(tag)
        : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, tag(x)]))
          : v;
  process.stdout.write(JSON.stringify(tag(notepack.decode(Buffer.from(hex, 'hex')))));
}
