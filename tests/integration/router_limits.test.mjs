// Out of file descriptors: the router pauses accepting (no spin on EMFILE, one log line), the
// control socket keeps taking commands once descriptors are free again, and service resumes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { makeApp, up, phoenix, httpGet, waitFor } from './harness.mjs';

const cpuTicks = (pid) => {
  let sum = 0;
  for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
    const f = fs.readFileSync(`/proc/${pid}/task/${task}/stat`, 'utf8').split(') ')[1].split(' ');
    sum += Number(f[11]) + Number(f[12]);  // utime + stime (fields 14 and 15)
  }
  return sum;
};

test('router: out of descriptors, accepting pauses; commands and requests are served again after', { timeout: 60000 }, async (t) => {
  const app = makeApp(t, 'router-echo', { files: { 'phoenix.toml': '[router]\nthreads = 1\n\n[process.web]\ninstances = 1\n' } });
  const px = await up(app, [], { wrap: ['prlimit', '--nofile=64:64'] });
  await px.waitReady(1);
  const used = fs.readdirSync(`/proc/${px.pid}/fd`).length;
  const clients = [];
  t.after(() => { for (const c of clients) c.destroy(); });
  // More idle connections than descriptors are left: the last ones wait in the backlog.
  for (let i = 0; i < 80 - used + 64; i++) {
    const c = net.connect({ host: '127.0.0.1', port: px.port });
    c.on('error', () => {});
    clients.push(c);
  }
  await waitFor(() => fs.readdirSync(`/proc/${px.pid}/fd`).length >= 62, { timeout: 10000, what: 'phoenix out of descriptors' });
  await px.waitOutput(/accept: Too many open files; new connections wait/);
  // A command while none are free: it waits in the control socket's backlog.
  const ps = phoenix(app, ['ps'], { timeout: 20000 });
  // No spin meanwhile (an accept retried at once would keep a core busy).
  const before = cpuTicks(px.pid);
  await new Promise((resolve) => setTimeout(resolve, 1000));  // a sample of CPU time, not a wait for a state
  const ticks = cpuTicks(px.pid) - before;
  assert.ok(ticks < 30, `phoenix used ${ticks} ticks of CPU in a second while out of descriptors`);
  for (const c of clients) c.destroy();
  const r = await ps;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /web\.1/);
  await waitFor(async () => (await httpGet(px.port, '/again').catch(() => ({ status: 0 }))).status === 200,
    { timeout: 10000, what: 'requests served again' });
});

test('router: one event loop per CPU phoenix may use (taskset), each named', { timeout: 30000 }, async (t) => {
  const app = makeApp(t, 'router-echo', { files: { 'phoenix.toml': '[process.web]\ninstances = 1\n' } });
  const px = await up(app, [], { wrap: ['taskset', '-c', '0'] });
  await px.waitReady(1);
  const names = fs.readdirSync(`/proc/${px.pid}/task`)
    .map((task) => fs.readFileSync(`/proc/${px.pid}/task/${task}/comm`, 'utf8').trim())
    .filter((name) => name.startsWith('router-'));
  assert.deepEqual(names, ['router-0'], 'one CPU allowed: one loop');
  assert.equal((await httpGet(px.port, '/')).status, 200);
});
