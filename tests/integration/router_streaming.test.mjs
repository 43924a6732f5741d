// Bodies stream through the router in bounded memory: a 300 MB upload and a 300 MB download
// (Content-Length and chunked) pass while phoenix's resident memory stays far below their size.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHash } from 'node:crypto';
import { makeApp, up, rawConnect, vmRssKb } from './harness.mjs';

const MB = 1024 * 1024;
const TOTAL = 300 * MB;
const RSS_LIMIT_KB = 100 * 1024;

/** Samples phoenix's VmRSS every 20 ms until stop() is called; stop() resolves the peak in KiB. */
function sampleRss(pid) {
  let peak = vmRssKb(pid) || 0;
  let samples = 0;
  const timer = setInterval(() => {
    const kb = vmRssKb(pid);
    if (kb !== null) { peak = Math.max(peak, kb); samples++; }
  }, 20);
  return {
    get peak() { return peak; },
    stop() { clearInterval(timer); return { peak, samples }; },
  };
}

/** POSTs `total` bytes in 64 KiB writes, respecting backpressure. Resolves { status, json }. */
function upload(port, path, total, { chunked = false, timeout = 60000 } = {}) {
  return new Promise((resolve, reject) => {
    const headers = chunked ? {} : { 'content-length': String(total) };
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', headers, timeout }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, json: JSON.parse(body) }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`upload: no progress within ${timeout} ms`)));
    const block = Buffer.alloc(64 * 1024, 'u');
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        const n = Math.min(block.length, total - sent);
        sent += n;
        if (!req.write(n === block.length ? block : block.subarray(0, n))) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}

/** GETs a body and counts its bytes without keeping them. Resolves { status, headers, bytes }. */
function download(port, path, { timeout = 60000 } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, timeout }, (res) => {
      let bytes = 0;
      res.on('data', (d) => { bytes += d.length; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, bytes, complete: res.complete }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`download: no progress within ${timeout} ms`)));
  });
}

async function startEcho(t) {
  const app = makeApp(t, 'router-echo', { files: { 'phoenix.toml': '[router]\naccess_log = true\n\n[process.web]\ninstances = 2\nstop_timeout = "1s"\n' } });
  const px = await up(app);
  await px.waitReady(2);
  return px;
}

test('router: a 300 MB upload streams through in bounded memory', { timeout: 90000 }, async (t) => {
  const px = await startEcho(t);
  const before = vmRssKb(px.pid);
  const rss = sampleRss(px.pid);
  const start = Date.now();
  const r = await upload(px.port, '/upload', TOTAL);
  const { peak, samples } = rss.stop();
  t.diagnostic(`upload 300 MB (Content-Length): ${Date.now() - start} ms, phoenix RSS ${before} kB before, peak ${peak} kB over ${samples} samples`);
  assert.equal(r.status, 200);
  assert.equal(r.json.bytes, TOTAL, 'every byte reached the app');
  assert.ok(samples >= 3, 'RSS was sampled during the transfer');
  assert.ok(peak < RSS_LIMIT_KB, `phoenix peak RSS ${peak} kB during a 300 MB upload`);

  // Chunked (no Content-Length), 100 MB.
  const rss2 = sampleRss(px.pid);
  const c = await upload(px.port, '/upload', 100 * MB, { chunked: true });
  const second = rss2.stop();
  t.diagnostic(`upload 100 MB chunked: phoenix peak RSS ${second.peak} kB`);
  assert.equal(c.status, 200);
  assert.equal(c.json.bytes, 100 * MB);
  assert.ok(second.peak < RSS_LIMIT_KB, `phoenix peak RSS ${second.peak} kB during a chunked upload`);
  await px.waitOutput(/router  \| at=info method=POST path="\/upload" .*status=200/);
});

test('router: a 300 MB download streams through in bounded memory', { timeout: 90000 }, async (t) => {
  const px = await startEcho(t);
  const before = vmRssKb(px.pid);
  const rss = sampleRss(px.pid);
  const start = Date.now();
  const r = await download(px.port, `/download?bytes=${TOTAL}`);
  const { peak, samples } = rss.stop();
  t.diagnostic(`download 300 MB (Content-Length): ${Date.now() - start} ms, phoenix RSS ${before} kB before, peak ${peak} kB over ${samples} samples`);
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-length'], String(TOTAL));
  assert.equal(r.bytes, TOTAL);
  assert.ok(r.complete);
  assert.ok(samples >= 3, 'RSS was sampled during the transfer');
  assert.ok(peak < RSS_LIMIT_KB, `phoenix peak RSS ${peak} kB during a 300 MB download`);
  await px.waitOutput(new RegExp(`router  \\| at=info method=GET path="/download\\?bytes=${TOTAL}" .*status=200 bytes=${TOTAL} `));

  // Chunked, 100 MB.
  const rss2 = sampleRss(px.pid);
  const c = await download(px.port, `/download?bytes=${100 * MB}&chunked=1`);
  const second = rss2.stop();
  t.diagnostic(`download 100 MB chunked: phoenix peak RSS ${second.peak} kB`);
  assert.equal(c.status, 200);
  assert.equal(c.headers['transfer-encoding'], 'chunked');
  assert.equal(c.bytes, 100 * MB);
  assert.ok(c.complete);
  assert.ok(second.peak < RSS_LIMIT_KB, `phoenix peak RSS ${second.peak} kB during a chunked download`);
});

test('router: a slow reader of a big download holds the app back, not phoenix memory', { timeout: 60000 }, async (t) => {
  const px = await startEcho(t);
  // Read 100 MB, pausing the response stream often: backpressure must reach the app.
  const rss = sampleRss(px.pid);
  const bytes = await new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: px.port, path: `/download?bytes=${100 * MB}`, timeout: 30000 }, (res) => {
      let n = 0;
      let paused = 0;
      res.on('data', (d) => {
        n += d.length;
        if (++paused % 64 === 0) {
          res.pause();
          setImmediate(() => res.resume());
        }
      });
      res.on('end', () => resolve(n));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
  const { peak } = rss.stop();
  assert.equal(bytes, 100 * MB);
  assert.ok(peak < RSS_LIMIT_KB, `phoenix peak RSS ${peak} kB`);
});

/** POSTs `body` and resolves the answer, even when it comes before the body was all taken. */
function postEarly(port, path, body, { chunked = false } = {}) {
  return new Promise((resolve, reject) => {
    const headers = chunked ? {} : { 'content-length': String(body.length) };
    let answered = false;
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', headers, timeout: 15000 }, (res) => {
      answered = true;
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    // Writing the rest may fail once the answer came and the connection closed: not an error.
    req.on('error', (e) => { if (!answered) reject(e); });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end(body);
  });
}

test('router: an answer given before the body was taken (an upload limit) reaches the client', { timeout: 60000 }, async (t) => {
  // Node answers 413 and closes with the body unread (or the app drops the connection itself):
  // the router's writes of the body then fail, but the answer is there to be read and passed on,
  // not replaced by a 502.
  const app = makeApp(t, 'router-echo', { files: { 'phoenix.toml': '[process.web]\ninstances = 1\n' } });
  const px = await up(app);
  await px.waitReady(1);
  const body = Buffer.alloc(8 * MB, 'x');
  for (const path of ['/too-large', '/too-large?reset=1']) {
    for (const chunked of [false, true]) {
      for (let i = 0; i < 3; i++) {
        const r = await postEarly(px.port, path, body, { chunked });
        assert.equal(r.status, 413, `${path} chunked=${chunked}: ${r.status} ${r.text}`);
        assert.equal(r.text, 'too large\n');
        assert.equal(r.headers.connection, 'close');
      }
    }
  }
  assert.doesNotMatch(px.stdout, /status=502/);
});

/** POSTs `total` bytes to /pipe and reads the echo as it comes; resolves the bytes and sha256 each way. */
function echo(port, total, { chunked = false, timeout = 60000 } = {}) {
  return new Promise((resolve, reject) => {
    const headers = chunked ? {} : { 'content-length': String(total) };
    const sentHash = createHash('sha256');
    const gotHash = createHash('sha256');
    let got = 0;
    const req = http.request({ host: '127.0.0.1', port, path: '/pipe', method: 'POST', headers, timeout }, (res) => {
      res.on('data', (d) => { got += d.length; gotHash.update(d); });
      res.on('end', () => resolve({ status: res.statusCode, got, sent: sentHash.digest('hex'), echoed: gotHash.digest('hex') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`echo: no progress within ${timeout} ms (got ${got} of ${total})`)));
    let sent = 0;
    let n = 0;
    const pump = () => {
      while (sent < total) {
        const block = Buffer.alloc(Math.min(64 * 1024, total - sent), String.fromCharCode(97 + (n++ % 26)));
        sent += block.length;
        sentHash.update(block);
        if (!req.write(block)) { req.once('drain', pump); return; }
      }
      req.end();
    };
    pump();
  });
}

// An app that answers as it reads (`req.pipe(res)`): its answer grows while the body still
// comes. When the router sent the whole body before reading any answer, both directions'
// socket buffers filled after a few MB and everything waited for ever (response_timeout).
test('router: a body and its answer stream at the same time (an app that echoes as it reads)', { timeout: 90000 }, async (t) => {
  const px = await startEcho(t);
  // Piece by piece: each piece is echoed before the next is sent, so nothing flows unless the
  // router passes the answer on while the body is still open.
  const c = await rawConnect(px.port, { t });
  c.write('POST /pipe HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n');
  for (const piece of ['ping-1', 'ping-2', 'ping-3']) {
    c.write(`${piece.length.toString(16)}\r\n${piece}\r\n`);
    await c.waitData(piece, { what: `the echo of ${piece} while the body is open`, timeout: 10000 });
  }
  c.write('0\r\n\r\n');
  await c.waitData((text) => text.endsWith('\r\n0\r\n\r\n'), { what: 'the end of the answer' });
  assert.match(c.text, /^HTTP\/1\.1 200 /);

  // Bigger than every socket buffer on the way, with a length and chunked; memory stays bounded.
  const rss = sampleRss(px.pid);
  for (const chunked of [false, true]) {
    const r = await echo(px.port, 64 * MB, { chunked });
    assert.equal(r.status, 200);
    assert.equal(r.got, 64 * MB, `chunked=${chunked}`);
    assert.equal(r.echoed, r.sent, `chunked=${chunked}: the echo is the body, byte for byte`);
  }
  const { peak } = rss.stop();
  assert.ok(peak < RSS_LIMIT_KB, `phoenix peak RSS ${peak} KiB while 128 MB passed`);
  assert.doesNotMatch(px.stdout, /status=50[24]/);
});

// The body and the answer run side by side, so each has its own clock: a slow upload whose
// app sent its head early is not cut by the answer's response_timeout; a client that is slow
// to start its body gets a 408 (its body's timeout), not a 504 that blames the instance; a
// client that stops sending while the answer streams gets its 408 too.
test('router: a slow body beside its answer: each side has its own timeout', { timeout: 60000 }, async (t) => {
  const app = makeApp(t, 'router-echo', { files: { 'phoenix.toml': '[router]\naccess_log = true\nresponse_timeout = "2s"\n\n[process.web]\ninstances = 1\n' } });
  const px = await up(app);
  await px.waitReady(1);

  // 8 bytes over ~4 s (twice response_timeout), one every 0.5 s, to an app that flushed its head.
  const a = await rawConnect(px.port, { t });
  a.write('POST /flush-then-count HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\n');
  await a.waitData('HTTP/1.1 200 ', { what: 'the early head' });
  for (let i = 0; i < 8; i++) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    a.write('x');
  }
  await a.waitData(/\r\n8\n/, { what: 'the count after the last byte', timeout: 5000 });

  // A head, then no body: 408 (the client's fault), not 504.
  const b = await rawConnect(px.port, { t });
  b.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n');
  await b.waitData(/^HTTP\/1\.1 \d{3} /, { what: 'an answer', timeout: 10000 });
  assert.match(b.text, /^HTTP\/1\.1 408 /, b.text);

  // Part of a body to an app that echoes it, then nothing: the answer has begun, so no 408
  // can go; the connection ends at response_timeout and the log says why.
  const c = await rawConnect(px.port, { t });
  c.write('POST /pipe HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
  await c.waitData('hello', { what: 'the echo' });
  await c.waitClosed({ timeout: 10000 });
  await px.waitOutput(/at=error code=H28 desc="Client connection idle" method=POST path="\/pipe"/);
  assert.doesNotMatch(px.stdout, /code=H12|code=H18/);
});

// An event stream, a slow report: the app sends its head, the body comes later. The head must
// reach the client when the app sends it (an EventSource opens on it), not with the first body
// byte, which may come after response_timeout (the router then made a 504 of the app's 200).
test('router: a response head goes on before its body comes', { timeout: 30000 }, async (t) => {
  const app = makeApp(t, 'router-echo', { files: { 'phoenix.toml': '[process.web]\ninstances = 1\n' } });
  const px = await up(app);
  await px.waitReady(1);
  for (const length of ['', '1']) {
    const id = `h${length}${Date.now()}`;
    const head = new Promise((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: px.port, path: `/held?id=${id}&length=${length}`, timeout: 20000 }, resolve);
      req.on('error', reject);
      req.on('timeout', () => req.destroy(new Error('no head within 20 s: held back until the body?')));
    });
    const res = await head; // before the fix: only after /release below, which never came
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'text/event-stream');
    let body = '';
    res.setEncoding('utf8').on('data', (d) => { body += d; });
    const ended = new Promise((resolve) => res.on('end', resolve));
    const released = await new Promise((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: px.port, path: `/release?id=${id}` }, (r) => { r.resume(); resolve(r.statusCode); }).on('error', reject);
    });
    assert.equal(released, 200);
    await ended;
    assert.equal(body, 'data: released\n\n');
  }
});
