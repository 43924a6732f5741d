// An instance that answers badly: what the router cannot frame is a 502 (never passed on), and
// bytes an instance sends past a response's end (a second response, a body to a 204, bytes
// written a little later) never answer the next request on that keep-alive connection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { makeApp, up, httpRequest, rawConnect } from './harness.mjs';

const TOML = '[router]\nthreads = 1\n\n[process.web]\ninstances = 1\nstop_timeout = "1s"\n';

test('router: unframeable responses are 502; bytes past a response never answer the next request', { timeout: 60000 }, async (t) => {
  const app = makeApp(t, 'router-faulty', { files: { 'phoenix.toml': TOML } });
  const px = await up(app);
  await px.waitReady(1);

  for (const path of ['/cl-and-te', '/two-lengths', '/bare-lf', '/bad-status', '/not-http', '/nul',
    '/bad-chunk', '/huge-head', '/endless-chunk-ext', '/unasked-101', '/te-gzip-and-cl', '/chunked-twice',
    '/status-000', '/1xx-with-length']) {
    const r = await httpRequest(px.port, path).catch((e) => { throw new Error(`${path}: ${e.message}`); });
    assert.equal(r.status, 502, `${path}: ${r.status} ${r.body}`);
    assert.equal(r.body, '502 Bad Gateway\n', path);
    // And the next request is answered by its own response.
    const next = await httpRequest(px.port, `/after${path}`);
    assert.equal(next.body, `/after${path}`, `after ${path}`);
  }

  // Well framed, with more behind it: the answer passes, the rest is dropped with the connection.
  const second = await httpRequest(px.port, '/then-a-second-response');
  assert.equal(second.body, '/then-a-second-response');
  assert.equal((await httpRequest(px.port, '/after-second')).body, '/after-second');

  const noContent = await httpRequest(px.port, '/no-content-with-body');
  assert.equal(noContent.status, 204);
  assert.equal((await httpRequest(px.port, '/after-204')).body, '/after-204');

  // Bytes that come after the connection went back to the pool.
  const late = await httpRequest(px.port, '/then-late-bytes');
  assert.equal(late.body, '/then-late-bytes');
  await px.waitOutput('late bytes sent after /then-late-bytes');
  assert.equal((await httpRequest(px.port, '/after-late')).body, '/after-late');

  // An answer with Connection: close ends that connection even when the instance is slow to
  // close it: the next request, a POST (never retried once sent), goes on a fresh one. The
  // client's own connection stays open: Connection is hop-by-hop, the body had a length.
  const c = await rawConnect(px.port, { t });
  c.write('GET /close-soon HTTP/1.1\r\nHost: x\r\n\r\n');
  await c.waitData((text) => text.endsWith('/close-soon'), { what: 'the /close-soon answer' });
  assert.doesNotMatch(c.text, /\r\nConnection: close\r\n/i);
  c.write('POST /after-close HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx');
  await c.waitData((text) => text.endsWith('/after-close'), { what: 'the POST answered on the same connection' });
  assert.match(c.text, /\/close-soonHTTP\/1\.1 200 OK\r\n/);
  const post = await httpRequest(px.port, '/after-close', { method: 'POST', body: 'x' });
  assert.equal(post.status, 200, post.body);
  assert.equal(post.body, '/after-close');

  assert.doesNotMatch(px.stdout, /path="\/after[^"]*" .*status=502/);
  // The log says what went wrong: the instance answered, its head was too large to pass on.
  assert.match(px.stdout, /code=H13 desc="Response head too large" .*path="\/huge-head" .*status=502/);
  assert.match(px.stdout, /code=H13 desc="Bad response from the instance" .*path="\/not-http" .*status=502/);
  assert.match(px.stdout, /code=H13 desc="Status code under 100" .*path="\/status-000" .*status=502/);
  assert.match(px.stdout, /code=H13 desc="Chunked applied twice" .*path="\/chunked-twice" .*status=502/);
});

test('router: a second response an instance writes late never reaches another client', { timeout: 90000 }, async (t) => {
  const app = makeApp(t, 'router-faulty', { files: { 'phoenix.toml': TOML } });
  const px = await up(app);
  await px.waitReady(1);
  // Six keep-alive clients, each on one connection, ask for paths of their own while a
  // seventh sends requests its instance answers twice. Pooled across clients, an instance
  // connection would carry the stray answer to whoever sent the next request on it, and every
  // later answer on it one request late: thousands of answers crossed, measured.
  const CLIENTS = 6;
  const PER_CLIENT = 400;
  const crossed = [];
  let answered = 0;
  let done = false;
  const client = async (k) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    t.after(() => agent.destroy());
    for (let n = 0; n < PER_CLIENT; n++) {
      const mine = `/c${k}-${n}`;
      const body = await new Promise((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port: px.port, path: mine, agent, timeout: 10000 }, (res) => {
          let text = '';
          res.setEncoding('latin1');
          res.on('data', (c) => { text += c; });
          res.on('end', () => resolve(text));
          res.on('error', reject);
        });
        req.on('timeout', () => req.destroy(new Error(`${mine}: no answer within 10 s`)));
        req.on('error', reject);
      });
      answered++;
      if (body !== mine) crossed.push(`${mine} got ${JSON.stringify(body)}`);
    }
  };
  const strays = (async () => {
    let sent = 0;
    while (!done && sent < 40) {
      const r = await httpRequest(px.port, '/answers-twice', { headers: { Connection: 'close' } });
      if (r.body !== '/answers-twice') crossed.push(`/answers-twice got ${JSON.stringify(r.body)}`);
      sent++;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return sent;
  })();
  await Promise.all(Array.from({ length: CLIENTS }, (_, k) => client(k)));
  done = true;
  const sent = await strays;
  assert.ok(sent >= 5, `only ${sent} requests answered twice during the run`);
  assert.equal(answered, CLIENTS * PER_CLIENT);
  assert.deepEqual(crossed.slice(0, 5), [], `${crossed.length} answers went to the wrong request`);
});

test('router: a response\'s framing goes on as the router read it, in one form', { timeout: 30000 }, async (t) => {
  const app = makeApp(t, 'router-faulty', { files: { 'phoenix.toml': TOML } });
  const px = await up(app);
  await px.waitReady(1);
  // An empty Transfer-Encoding line before "chunked": the router decodes chunked; sent on as it
  // came, a client reading the first line would see no framing and read the chunks as the body,
  // then wait for more on a connection that is out of step.
  const c = await rawConnect(px.port, { t });
  c.write('GET /te-empty-then-chunked HTTP/1.1\r\nHost: x\r\n\r\n');
  await c.waitData((text) => text.endsWith('0\r\n\r\n'), { what: 'the chunked answer' });
  const head = c.text.slice(0, c.text.indexOf('\r\n\r\n'));
  assert.deepEqual(head.match(/^transfer-encoding:.*$/gim), ['Transfer-Encoding: chunked'], head);
  assert.match(c.text, /\r\n\r\n16\r\n\/te-empty-then-chunked\r\n0\r\n\r\n$/);
  // A status line without a reason phrase (and without the space before it).
  const noReason = await httpRequest(px.port, '/no-reason');
  assert.equal(noReason.status, 200, noReason.body);
  assert.equal(noReason.body, '/no-reason');
  // Two equal Content-Length lines: one goes on.
  const before = c.text.length;
  c.write('GET /cl-twice HTTP/1.1\r\nHost: x\r\n\r\n');
  await c.waitData((text) => text.endsWith('/cl-twice'), { what: 'the /cl-twice answer' });
  const second = c.text.slice(before);
  assert.deepEqual(second.match(/^content-length:.*$/gim), ['Content-Length: 9'], second);
  assert.equal(c.closed, false);
  // Content-Length in a trailer: the whole body and its last chunk reach the client, and its
  // connection goes on (it was cut after the body, its last chunk never sent).
  const beforeTrailer = c.text.length;
  c.write('GET /cl-in-trailer HTTP/1.1\r\nHost: x\r\n\r\n');
  await c.waitData((text) => text.slice(beforeTrailer).endsWith('0\r\n\r\n'), { what: 'the /cl-in-trailer answer, whole' });
  assert.match(c.text.slice(beforeTrailer), /\r\n\r\ne\r\n\/cl-in-trailer\r\n0\r\n\r\n$/);
  assert.equal(c.closed, false);
  assert.equal((await httpRequest(px.port, '/after-trailer')).body, '/after-trailer');

  // A transfer coding other than chunked, last, and no length: the body ends with the close
  // (RFC 9112 6.3), the client's too (not chunked on top: clients that know only "chunked"
  // would wait for a close that never comes). An HTTP/1.0 client gets no Transfer-Encoding
  // (RFC 9112 6.1): the coding is named as a content coding, after the content's own.
  const g = await rawConnect(px.port, { t });
  g.write('GET /te-gzip-until-close HTTP/1.1\r\nHost: x\r\n\r\n');
  await g.waitClosed({ timeout: 5000 });
  const ghead = g.text.slice(0, g.text.indexOf('\r\n\r\n'));
  assert.match(ghead, /\r\nTransfer-Encoding: gzip\r\n/i);
  assert.match(ghead, /\r\nConnection: close\r\n/i);
  assert.ok(g.text.endsWith('\r\n\r\nzipped bytes'), JSON.stringify(g.text));
  const old = await rawConnect(px.port, { t });
  old.write('GET /te-gzip-until-close HTTP/1.0\r\n\r\n');
  await old.waitClosed({ timeout: 5000 });
  const ohead = old.text.slice(0, old.text.indexOf('\r\n\r\n'));
  assert.doesNotMatch(ohead, /transfer-encoding/i);
  assert.match(ohead, /\r\nContent-Encoding: br, gzip\r\n/i);
  assert.ok(old.text.endsWith('\r\n\r\nzipped bytes'), JSON.stringify(old.text));
  // A body without a length that a reset cuts: chunked to the client, it lacks its last chunk
  // (passed on as it came, it ended with a clean close and looked whole).
  const cut = await rawConnect(px.port, { t });
  cut.write('GET /until-reset HTTP/1.1\r\nHost: x\r\n\r\n');
  await cut.waitClosed({ timeout: 5000 });
  assert.match(cut.text, /\r\nTransfer-Encoding: chunked\r\n/i);
  assert.ok(cut.text.includes('r'.repeat(3000).slice(0, 100)), 'the body so far was passed on');
  assert.ok(!cut.text.endsWith('0\r\n\r\n'), JSON.stringify(cut.text.slice(-40)));
});

test('router: an early answer while the instance stops reading the body reaches the client; that connection is not reused', { timeout: 60000 }, async (t) => {
  const app = makeApp(t, 'router-faulty', { files: { 'phoenix.toml': '[router]\nthreads = 1\nresponse_timeout = "1s"\n\n[process.web]\ninstances = 1\nstop_timeout = "1s"\n' } });
  const px = await up(app);
  await px.waitReady(1);
  const body = 'x'.repeat(8 << 20);  // more than the sockets' buffers hold: the writes stall
  const r = await httpRequest(px.port, '/stall-413', { method: 'POST', body, timeout: 20000 }).catch((e) => ({ status: e.message }));
  assert.equal(r.status, 413, String(r.status));
  // The instance still waits for the rest of that body: the next request goes on another
  // connection and gets its own answer, not a 504.
  const next = await httpRequest(px.port, '/after-stall', { timeout: 10000 });
  assert.equal(next.status, 200, next.body);
  assert.equal(next.body, '/after-stall');
});

test('router: a request body that stops coming gets a 408, not a silent close', { timeout: 60000 }, async (t) => {
  // The app waits for the whole body (/upload); the client sends 3 bytes of 100,000 and stops.
  const app = makeApp(t, 'router-echo', { files: { 'phoenix.toml': '[router]\nresponse_timeout = "2s"\n\n[process.web]\ninstances = 1\n' } });
  const px = await up(app);
  await px.waitReady(1);
  const d = await rawConnect(px.port, { t });
  d.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc');
  await d.waitData((text) => /^HTTP\/1\.1 408 /.test(text), { what: 'the 408', timeout: 10000 });
  await px.waitOutput(/at=error code=H28 desc="Client connection idle" method=POST path="\/upload" .* status=408 /);
});

test('router: 1xx heads without end are cut at 16 with a 502; a response that ends the connection reaches a pipelining client whole', { timeout: 60000 }, async (t) => {
  const app = makeApp(t, 'router-faulty', { files: { 'phoenix.toml': '[process.web]\ninstances = 1\n' } });
  const px = await up(app);
  await px.waitReady(1);

  // Each 1xx head is kept until the request ends: 40 of them (or an endless stream) must not
  // all be taken. 16 reach the client, then the 502.
  const c = await rawConnect(px.port, { t });
  c.write('GET /many-1xx HTTP/1.1\r\nHost: x\r\n\r\n');
  await c.waitData(/HTTP\/1\.1 502 /, { what: 'the 502 after the 1xx heads' });
  assert.equal((c.text.match(/HTTP\/1\.1 103 /g) || []).length, 16, c.text.slice(0, 300));
  assert.doesNotMatch(c.text, /HTTP\/1\.1 200 /);
  const fat = await rawConnect(px.port, { t });
  fat.write('GET /fat-1xx HTTP/1.1\r\nHost: x\r\n\r\n');
  await fat.waitData(/HTTP\/1\.1 502 /, { what: 'the 502 after 64 KiB of 1xx heads' });
  assert.equal((fat.text.match(/HTTP\/1\.1 103 /g) || []).length, 2, fat.text.slice(0, 300));
  assert.doesNotMatch(fat.text, /HTTP\/1\.1 200 /);

  // A body that ends with the connection ends an HTTP/1.0 client's too; a request pipelined
  // behind it is unread when the router closes, and a plain close() would send a RST that makes
  // the client's kernel drop the end of the body. Lingering, all 3 MB arrive.
  const d = await rawConnect(px.port, { t });
  d.write('GET /big-until-close HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
  await d.waitData('HTTP/1.1 200 ', { what: 'the head of the 3 MB answer' });
  d.write('GET /next HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
  await d.waitClosed({ timeout: 10000 });
  const body = d.data.subarray(d.data.indexOf('\r\n\r\n') + 4);
  assert.equal(body.length, 3 * 1024 * 1024, `body bytes before the close (error: ${d.error && d.error.code})`);
  // An HTTP/1.1 client gets it chunked, and its pipelined request answered after it.
  const e = await rawConnect(px.port, { t });
  e.write('GET /big-until-close HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n');
  await e.waitData((text) => text.endsWith('/next'), { timeout: 10000, what: 'the 3 MB answer, then /next' });
  assert.match(e.text, /^HTTP\/1\.1 200 OK\r\n[^]*Transfer-Encoding: chunked\r\n/);
  const chunks = e.text.slice(e.text.indexOf('\r\n\r\n') + 4, e.text.lastIndexOf('HTTP/1.1 200'));
  let total = 0;
  for (let at = 0; ;) {
    const eol = chunks.indexOf('\r\n', at);
    const size = parseInt(chunks.slice(at, eol), 16);
    if (size === 0) break;
    total += size;
    at = eol + 2 + size + 2;
  }
  assert.equal(total, 3 * 1024 * 1024);
});
