// Out of file descriptors: the router pauses accepting (no spin on EMFILE, one log line), the
// control socket keeps taking commands once descriptors are free again, and service resumes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { makeApp, up, phoenix, httpGet, waitFor, rawConnect, vmRssKb } from './harness.mjs';

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

// Idle keep-alive connections park: past 250 ms without a next request, a connection gives back
// its read buffer and waits on readability alone (as nginx's and HAProxy's do), so thousands of
// idle browsers cost little; a parked connection answers its next request as any other, and
// idle_timeout still closes it.
test('router: idle keep-alive connections park, hold little memory, and answer their next request', { timeout: 90000 }, async (t) => {
  const app = makeApp(t, 'router-echo', {
    files: { 'phoenix.toml': '[router]\nthreads = 1\nidle_timeout = "20s"\n\n[process.web]\ninstances = 1\n' },
  });
  const px = await up(app);
  await px.waitReady(1);
  await px.waitOutput(/admin on http:\/\/127\.0\.0\.1:\d+/);
  const admin = Number(px.stdout.match(/admin on http:\/\/127\.0\.0\.1:(\d+)/)[1]);
  const parked = async () => {
    const m = /^phoenix_router_parked_connections (\d+)$/m.exec((await httpGet(admin, '/metrics')).body);
    return m ? Number(m[1]) : -1;
  };
  const answers = (c) => (c.text.match(/HTTP\/1\.1 200 /g) || []).length;
  const clients = [];
  // Batches of 100, each parked before the next: buffers freed by one batch serve the next,
  // so the growth measured is what a parked connection keeps.
  const batch = async () => {
    const fresh = await Promise.all(Array.from({ length: 100 }, () => rawConnect(px.port, { t })));
    for (const c of fresh) c.write('GET /first HTTP/1.1\r\nHost: x\r\n\r\n');
    await Promise.all(fresh.map((c) => c.waitData((text) => /\r\n\r\n\{.*\}$/s.test(text), { what: 'the first answer' })));
    clients.push(...fresh);
    await waitFor(async () => (await parked()) === clients.length,
      { timeout: 10000, what: `${clients.length} parked connections`, describe: async () => `parked: ${await parked()}` });
  };
  await batch();  // the loop's own buffers and pools, made once
  const before = vmRssKb(px.pid);
  for (let i = 0; i < 10; i++) await batch();
  const perConnection = (vmRssKb(px.pid) - before) / 1000;
  // ~13 KiB a connection before parking existed (a 16 KiB read buffer and the request's frame
  // and field block each); HAProxy's are ~1.2 KiB here.
  t.diagnostic(`RSS of a parked connection: ${perConnection.toFixed(1)} KiB`);
  assert.ok(perConnection < 8, `an idle connection costs ${perConnection.toFixed(1)} KiB of RSS`);

  // Each parked connection wakes for its next request.
  for (const c of clients) c.write('GET /second HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor(() => clients.every((c) => answers(c) === 2),
    { timeout: 20000, what: 'every parked connection answered again', describe: () => `${clients.filter((c) => answers(c) === 2).length} of ${clients.length}` });
  assert.ok(clients.every((c) => c.text.includes('"url":"/second"')));
  await waitFor(async () => (await parked()) === clients.length, { timeout: 10000, what: 'parked again' });
  // A pipelined pair on a parked connection: both answered, in order.
  const one = clients[0];
  one.write('GET /p1 HTTP/1.1\r\nHost: x\r\n\r\nGET /p2 HTTP/1.1\r\nHost: x\r\n\r\n');
  await one.waitData((text) => (text.match(/HTTP\/1\.1 200 /g) || []).length === 4, { what: 'two pipelined answers' });
  assert.ok(one.text.indexOf('"url":"/p1"') < one.text.indexOf('"url":"/p2"'));
  for (const c of clients.slice(1)) c.destroy();
  await waitFor(async () => (await parked()) <= 1, { timeout: 10000, what: 'closed connections no longer parked' });
});

// One keep-alive connection that has had its answer, to a phoenix with idle_timeout = 2s.
async function answeredConnection(t) {
  const app = makeApp(t, 'router-echo', {
    files: { 'phoenix.toml': '[router]\nthreads = 1\nidle_timeout = "2s"\n\n[process.web]\ninstances = 1\n' },
  });
  const px = await up(app);
  await px.waitReady(1);
  const c = await rawConnect(px.port, { t });
  c.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  await c.waitData(/\r\n\r\n\{.*\}$/s);
  return c;
}

test('router: idle_timeout closes a parked keep-alive connection', { timeout: 30000 }, async (t) => {
  const c = await answeredConnection(t);
  const answered = Date.now();
  await c.waitClosed({ timeout: 10000 });
  const after = Date.now() - answered;
  assert.ok(after >= 1500, `closed after ${after} ms, before idle_timeout`);
});

test('router: empty lines between requests do not restart idle_timeout', { timeout: 30000 }, async (t) => {
  const c = await answeredConnection(t);
  // A CRLF every 300 ms (RFC 9112 allows empty lines before a request), for at most 12 s: the
  // connection must still end about idle_timeout after the answer, not 2 s after the last CRLF.
  const timer = setInterval(() => { if (!c.closed) c.write('\r\n'); }, 300);
  t.after(() => clearInterval(timer));
  await c.waitClosed({ timeout: 12000 });
  clearInterval(timer);
});
