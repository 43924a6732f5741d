// Slow clients: 1,000 connections dribbling a request head do not stop service to others, and
// each is closed once header_timeout has passed; an idle keep-alive connection is closed after
// idle_timeout; a head larger than max_header_bytes gets 431 (414 when its request line is).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { makeApp, up, httpRequest, rawConnect, waitFor } from './harness.mjs';

function toml(router) {
  return `[router]\n${router}\n\n[process.web]\ninstances = 2\nstop_timeout = "1s"\n`;
}

/** Opens `count` connections that send a partial head, then one more header line every `everyMs`. */
async function slowClients(t, port, count, everyMs) {
  const clients = [];
  const opening = [];
  for (let i = 0; i < count; i++) {
    opening.push(new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port });
      const c = { socket: s, closed: false, data: '', openedAt: 0, closedAt: 0 };
      s.setEncoding('latin1');
      s.on('connect', () => {
        c.openedAt = Date.now();
        s.write(`GET /slow-${i} HTTP/1.1\r\nHost: x\r\n`);
        resolve(c);
      });
      s.on('data', (d) => { c.data += d; });
      const done = () => { if (!c.closed) { c.closed = true; c.closedAt = Date.now(); } };
      s.on('close', done);
      s.on('end', done);
      s.on('error', (err) => { done(); reject(err); });
      clients.push(c);
    }));
  }
  await Promise.all(opening);
  let n = 0;
  const timer = setInterval(() => {
    n++;
    for (const c of clients) if (!c.closed) c.socket.write(`X-Drip-${n}: a\r\n`);
  }, everyMs);
  const stop = () => { clearInterval(timer); for (const c of clients) c.socket.destroy(); };
  t.after(stop);
  return { clients, stop };
}

test('router: 1,000 slow connections do not stop service to others, and are cut at header_timeout', { timeout: 60000 }, async (t) => {
  const app = makeApp(t, 'router-echo', { files: { 'phoenix.toml': toml('header_timeout = "4s"') } });
  const px = await up(app);
  await px.waitReady(2);

  const started = Date.now();
  const slow = await slowClients(t, px.port, 1000, 500);
  t.diagnostic(`1000 slow connections open after ${Date.now() - started} ms`);

  // Meanwhile, fresh clients are served at once.
  const latencies = [];
  for (let i = 0; i < 40; i++) {
    const s = Date.now();
    const r = await httpRequest(px.port, `/normal-${i}`, { timeout: 2000, headers: { connection: 'close' } });
    latencies.push(Date.now() - s);
    assert.equal(r.status, 200);
    assert.equal(r.json.url, `/normal-${i}`);
  }
  // 40 concurrent ones too.
  const s = Date.now();
  const many = await Promise.all(Array.from({ length: 40 }, (_, i) => httpRequest(px.port, `/together-${i}`, { timeout: 3000 })));
  const together = Date.now() - s;
  assert.ok(many.every((r) => r.status === 200));
  latencies.sort((a, b) => a - b);
  t.diagnostic(`normal requests beside them: median ${latencies[20]} ms, max ${latencies.at(-1)} ms; 40 at once in ${together} ms`);
  assert.ok(latencies.at(-1) < 1000, `a normal request took ${latencies.at(-1)} ms`);
  const stillOpen = slow.clients.filter((c) => !c.closed).length;
  const elapsed = Date.now() - started;
  if (elapsed < 3000) assert.equal(stillOpen, 1000, 'the slow ones are not cut before header_timeout');

  // Then every slow one is closed (with a 408) once its 4 s are over, though it kept sending.
  await waitFor(() => slow.clients.every((c) => c.closed), {
    timeout: 10000, what: 'all slow connections closed', describe: () => `${slow.clients.filter((c) => !c.closed).length} still open`,
  });
  const lifetimes = slow.clients.map((c) => c.closedAt - c.openedAt).sort((a, b) => a - b);
  t.diagnostic(`slow connections lived ${lifetimes[0]}..${lifetimes.at(-1)} ms`);
  assert.ok(lifetimes[0] >= 3500, `one was cut after ${lifetimes[0]} ms, before header_timeout`);
  assert.ok(lifetimes.at(-1) < 8000, `one lived ${lifetimes.at(-1)} ms`);
  const with408 = slow.clients.filter((c) => c.data.startsWith('HTTP/1.1 408 ')).length;
  assert.ok(with408 >= 990, `${with408} of 1000 got a 408`);
  assert.ok(slow.clients.every((c) => !c.data.includes('200 OK')), 'none was forwarded');

  // And service goes on.
  const after = await httpRequest(px.port, '/after');
  assert.equal(after.status, 200);
});

test('router: a slow head is cut at header_timeout; a silent connection too', { timeout: 30000 }, async (t) => {
  const app = makeApp(t, 'router-echo', { files: { 'phoenix.toml': toml('header_timeout = "2s"') } });
  const px = await up(app);
  await px.waitReady(2);

  const start = Date.now();
  const dribbler = await rawConnect(px.port, { t });
  const silent = await rawConnect(px.port, { t });
  dribbler.write('GET /dribble HTTP/1.1\r\n');
  const drip = setInterval(() => { if (!dribbler.closed) dribbler.write('X: y\r\n'); }, 200);
  t.after(() => clearInterval(drip));
  await dribbler.waitClosed({ timeout: 6000 });
  const cut = Date.now() - start;
  clearInterval(drip);
  assert.ok(cut >= 1800 && cut < 3500, `cut after ${cut} ms (header_timeout 2 s)`);
  assert.match(dribbler.text, /^HTTP\/1\.1 408 /);
  await px.waitOutput(/router  \| at=error code=H400 desc="header timeout" .*status=408/);

  await silent.waitClosed({ timeout: 6000 });
  const silentCut = Date.now() - start;
  assert.ok(silentCut >= 1800 && silentCut < 3500, `silent connection cut after ${silentCut} ms`);
  assert.equal(silent.text, '', 'nothing to answer to a connection that sent nothing');

  // A head that completes in time is served, even if it came slowly.
  const slowButInTime = await rawConnect(px.port, { t });
  slowButInTime.write('GET /in-time HTTP/1.1\r\n');
  await waitFor(() => Date.now() - start > silentCut + 500, { timeout: 2000 });
  slowButInTime.write('Host: x\r\n\r\n');
  await slowButInTime.waitData('"url":"/in-time"', { what: 'the answer' });
});

test('router: an idle keep-alive connection is closed after idle_timeout', { timeout: 30000 }, async (t) => {
  const app = makeApp(t, 'router-echo', { files: { 'phoenix.toml': toml('idle_timeout = "1s"\nheader_timeout = "10s"') } });
  const px = await up(app);
  await px.waitReady(2);
  const c = await rawConnect(px.port, { t });
  c.write('GET /ka HTTP/1.1\r\nHost: x\r\n\r\n');
  await c.waitData('"url":"/ka"', { what: 'the answer' });
  const answered = Date.now();
  await c.waitClosed({ timeout: 5000 });
  const idle = Date.now() - answered;
  assert.ok(idle >= 800 && idle < 2500, `closed after ${idle} ms idle (idle_timeout 1 s)`);
  assert.equal((c.text.match(/HTTP\/1\.1 /g) || []).length, 1, 'no 408 for a connection idle between requests');
});

test('router: 431 for a head larger than max_header_bytes', { timeout: 30000 }, async (t) => {
  const app = makeApp(t, 'router-echo');
  const px = await up(app);
  await px.waitReady(2);

  // Default limit 32 KiB: a 40 KiB field.
  const c = await rawConnect(px.port, { t });
  c.write(`GET /huge HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(40 * 1024)}\r\n\r\n`);
  await c.waitData(/^HTTP\/1\.1 431 /, { what: '431' });
  await c.waitClosed();
  await px.waitOutput(/router  \| at=error code=H400 desc="header too large" .*status=431/);

  // Many fields adding up to 40 KiB, none of them big: the limit is on the whole head, however
  // it arrives (Beast's parser counts its limit per call, from where the last call stopped).
  const d = await rawConnect(px.port, { t });
  d.write('GET /many HTTP/1.1\r\nHost: x\r\n');
  for (let i = 0; i < 8; i++) d.write(`X-F${i}: ${'b'.repeat(5000)}\r\n`);
  d.write('\r\n');
  await d.waitData(/^HTTP\/1\.1 431 /, { what: '431' });
  await d.waitClosed();
  // The router answered it, not the app (Node's own limit is 16 KiB, and answers 431 too).
  await px.waitOutput(/router  \| at=error code=H400 desc="header too large" method=GET path="\/many" .*status=431/);
  assert.doesNotMatch(px.stdout, /router  \| at=info method=GET path="\/many"/);

  // A request line longer than the whole limit is a target too long to parse: 414 (RFC 9112 3),
  // whether it ends before the limit is seen or not.
  for (const tail of ['', ' HTTP/1.1\r\nHost: x\r\n\r\n']) {
    const u = await rawConnect(px.port, { t });
    u.write(`GET /${'u'.repeat(40 * 1024)}${tail}`);
    await u.waitData(/^HTTP\/1\.1 414 URI Too Long\r\n/, { what: '414' });
    await u.waitClosed();
  }
  await px.waitOutput(/router  \| at=error code=H400 desc="request line too long" .*status=414/);

  // Just under the limit passes.
  const ok = await httpRequest(px.port, '/big-ok', { headers: { 'x-big': 'c'.repeat(30 * 1024) } });
  assert.equal(ok.status, 200);
  assert.equal(ok.json.headers['x-big'].length, 30 * 1024);
});

test('router: max_header_bytes is configurable', { timeout: 30000 }, async (t) => {
  const app = makeApp(t, 'router-echo', { files: { 'phoenix.toml': toml('max_header_bytes = 4096') } });
  const px = await up(app);
  await px.waitReady(2);
  const big = await rawConnect(px.port, { t });
  big.write(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(5000)}\r\n\r\n`);
  await big.waitData(/^HTTP\/1\.1 431 /, { what: '431' });
  const small = await httpRequest(px.port, '/', { headers: { 'x-small': 'a'.repeat(3000) } });
  assert.equal(small.status, 200);
});
