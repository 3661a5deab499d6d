#!/usr/bin/env node
/**
 * The CPU of one writing request in the store alone, without HTTP or a
 * framework: `load`, read the profile, change one small key, `save`, on one
 * session of about `bytes` bytes (the frameworks section's profile), one
 * cycle at a time, in table `bench_cycle` (kept for the next run). Prints wall time and this process's CPU per cycle; run it
 * with `node --cpu-prof` to see where the time goes at 1 KB against 40 KB.
 *
 *   node bench/tools/store-cycle.mjs sqlite:///tmp/cycle.db 40960 [cycles=3000]
 */
import { SessionStore } from 'smart-session-store';
import { makeProfile } from '../lib/app.mjs';

const [url, bytesArg = '1024', cyclesArg = '3000'] = process.argv.slice(2);
if (url === undefined) {
  console.error('usage: store-cycle.mjs <store url> [bytes] [cycles]');
  process.exit(2);
}
const bytes = Number(bytesArg);
const cycles = Number(cyclesArg);
const store = new SessionStore({ url, table: 'bench_cycle', createTable: true, autopurge: false });
const sid = `cycle-${'a'.repeat(32)}`;
const day = 86_400_000;
await store.save(sid, {
  cookie: { originalMaxAge: day, expires: new Date(Date.now() + day).toISOString(), httpOnly: true, path: '/' },
  profile: makeProfile(1, bytes),
});

async function cycle() {
  const loaded = await store.load(sid);
  if (loaded === null || loaded.session.profile === undefined) throw new Error('the session is missing');
  loaded.session.hits = (loaded.session.hits ?? 0) + 1;
  await store.save(sid, loaded.session, loaded.state);
}

for (let i = 0; i < 300; i++) await cycle();
const cpuBefore = process.cpuUsage();
const started = performance.now();
for (let i = 0; i < cycles; i++) await cycle();
const cpu = process.cpuUsage(cpuBefore);
const wall = performance.now() - started;
console.log(
  `${url.split(':')[0]} ${bytes} B: ${((wall * 1000) / cycles).toFixed(0)} µs wall, ` +
    `${((cpu.user + cpu.system) / cycles).toFixed(0)} µs CPU (user ${(cpu.user / cycles).toFixed(0)}) per cycle`,
);
await store.destroy(sid);
await store.close();
