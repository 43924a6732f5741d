// The router on the public port: requests spread over the ready instances, forwarding headers,
// keep-alive, pipelining, HEAD, chunked bodies both ways, Expect: 100-continue, 503 when no
// instance is ready, 504 when an instance does not answer in time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { makeApp, up, httpRequest, httpGet, rawConnect } from './harness.mjs';

const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/**
 * Splits raw HTTP/1.1 responses received on one connection. `methods` lists the request methods in
 * order (a HEAD response has no body). Returns the complete responses so far.
 */
function parseResponses(buf, methods = []) {
  const out = [];
  let at = 0;
  const text = buf.toString('latin1');
  while (at < text.length) {
    const end = text.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const lines = text.slice(at, end).split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
    if (!m) throw new Error(`not a status line: ${JSON.stringify(lines[0])}`);
    const status = Number(m[1]);
    const headers = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    let pos = end + 4;
    let body = '';
    const method = status >= 200 ? methods[out.filter((r) => r.status >= 200).length] : undefined;
    if (status < 200 || status === 204 || status === 304 || method === 'HEAD') {
      // no body
    } else if ((headers['transfer-encoding'] || '').toLowerCase() === 'chunked') {
      let complete = false;
      for (;;) {
        const eol = text.indexOf('\r\n', pos);
        if (eol < 0) break;
        const size = parseInt(text.slice(pos, eol), 16);
        if (size === 0) {
          const fin = text.indexOf('\r\n\r\n', eol);
          if (fin < 0) break;
          pos = fin + 4;
          complete = true;
          break;
        }
        if (text.length < eol + 2 + size + 2) break;
        body += text.slice(eol + 2, eol + 2 + size);
        pos = eol + 2 + size + 2;
      }
      if (!complete) break;
    } else if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length']);
      if (text.length < pos + n) break;
      body = text.slice(pos, pos + n);
      pos += n;
    } else {
      break; // ends at close: not used here
    }
    let json;
    try { json = JSON.parse(body); } catch { json = undefined; }
    out.push({ status, headers, body, json, head: lines[0] });
    at = pos;
  }
  return out;
}

async function startEcho(t, toml = '') {
  const app = makeApp(t, 'router-echo', toml ? { files: { 'phoenix.toml': toml } } : {});
  const px = await up(app);
  await px.waitReady(2);
  return { app, px };
}

test('router: spreads requests over both instances, no stickiness', { timeout: 30000 }, async (t) => {
  const { px } = await startEcho(t);
  // Fresh connections.
  const fresh = {};
  for (let i = 0; i < 20; i++) {
    const r = await httpRequest(px.port, `/fresh/${i}`, { headers: { connection: 'close' } });
    assert.equal(r.status, 200);
    fresh[r.json.instance] = (fresh[r.json.instance] || 0) + 1;
  }
  assert.deepEqual(Object.keys(fresh).sort(), ['web.1', 'web.2'], JSON.stringify(fresh));
  assert.ok(fresh['web.1'] >= 5 && fresh['web.2'] >= 5, `uneven: ${JSON.stringify(fresh)}`);

  // One keep-alive connection: its requests still go to both instances, alternately.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const seen = [];
  let reused = 0;
  for (let i = 0; i < 10; i++) {
    const r = await new Promise((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: px.port, path: `/ka/${i}`, agent, timeout: 5000 }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => { body += d; });
        res.on('end', () => resolve({ status: res.statusCode, json: JSON.parse(body), reused: req.reusedSocket }));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
    });
    assert.equal(r.status, 200);
    seen.push(r.json.instance);
    if (r.reused) reused++;
  }
  assert.equal(reused, 9, 'the client connection is kept alive and reused');
  for (let i = 1; i < seen.length; i++) {
    assert.notEqual(seen[i], seen[i - 1], `round-robin alternates on one connection: ${seen}`);
  }
});

test('router: X-Forwarded-* and X-Request-Id reach the app; hop-by-hop fields do not', { timeout: 30000 }, async (t) => {
  const { px } = await startEcho(t);

  const r = await httpGet(px.port, '/hdr?a=1', { headers: { 'x-hop': 'secret', connection: 'keep-alive, x-hop', 'x-kept': 'yes' } });
  assert.equal(r.status, 200);
  const h = r.json.headers;
  assert.equal(h['x-forwarded-for'], '127.0.0.1');
  assert.equal(h['x-forwarded-proto'], 'http');
  assert.equal(h['x-forwarded-port'], String(px.port));
  assert.match(h['x-request-id'], UUID4);
  assert.equal(h['x-kept'], 'yes');
  assert.equal(h['x-hop'], undefined, 'a field named by Connection is hop-by-hop');
  assert.equal(r.json.url, '/hdr?a=1');
  assert.equal(h.host, `127.0.0.1:${px.port}`, 'Host passes unchanged');
  // The access log line of that request names it.
  const id = h['x-request-id'];
  await px.waitOutput(new RegExp(`router  \\| at=info method=GET path="/hdr\\?a=1" host=127\\.0\\.0\\.1:${px.port} ` +
    `request_id=${id} fwd="127\\.0\\.0\\.1" dyno=${r.json.instance} connect=\\d+ms service=\\d+ms status=200 bytes=\\d+ protocol=http`));

  // Every request gets its own id.
  const r2 = await httpGet(px.port, '/hdr');
  assert.match(r2.json.headers['x-request-id'], UUID4);
  assert.notEqual(r2.json.headers['x-request-id'], id);

  // A sane client id is kept; an insane one is replaced.
  const sane = 'client-chosen.Id_123+/=';
  const kept = await httpGet(px.port, '/id', { headers: { 'x-request-id': sane } });
  assert.equal(kept.json.headers['x-request-id'], sane);
  for (const insane of ['short', 'has spaces in it, and more', 'x'.repeat(201), 'quote"quote"quote"quote']) {
    const r3 = await httpGet(px.port, '/id', { headers: { 'x-request-id': insane } });
    assert.match(r3.json.headers['x-request-id'], UUID4, `replaced: ${insane}`);
  }

  // X-Forwarded-For from the client is kept and appended to. The client is on loopback, which
  // [router] trusted_proxies trusts by default (a local TLS proxy): its Proto and Port go on.
  const chain = await httpGet(px.port, '/xff', {
    headers: { 'x-forwarded-for': '203.0.113.9, 10.1.2.3', 'x-forwarded-proto': 'https', 'x-forwarded-port': '443' },
  });
  assert.equal(chain.json.headers['x-forwarded-for'], '203.0.113.9, 10.1.2.3, 127.0.0.1');
  assert.equal(chain.json.headers['x-forwarded-proto'], 'https');
  assert.equal(chain.json.headers['x-forwarded-port'], '443');
  const count = (name) => chain.json.rawHeaders.filter((x, i) => i % 2 === 0 && x.toLowerCase() === name).length;
  assert.equal(count('x-forwarded-for'), 1);
  assert.equal(count('x-forwarded-proto'), 1);
  // The log names the first address the trusted proxy did not vouch for (10.1.2.3 is not trusted).
  await px.waitOutput(new RegExp(`path="/xff" .*request_id=${chain.json.headers['x-request-id']} fwd="10\\.1\\.2\\.3" `));
});

test('router: a client that resets at once is still forwarded with its address, never "unknown"', { timeout: 30000 }, async (t) => {
  const { px } = await startEcho(t);
  // The address comes from accept(2): asked of the socket after the RST, there is none.
  for (let i = 0; i < 10; i++) {
    const c = net.connect(px.port, '127.0.0.1');
    await new Promise((resolve) => c.on('connect', resolve));
    c.write(`POST /hdr?reset=${i} HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello`);
    c.resetAndDestroy();
  }
  // Some may be cut before their request was read; those that were read are logged.
  await px.waitOutput(/path="\/hdr\?reset=\d"/);
  const lines = px.stdout.split('\n').filter((l) => l.includes('path="/hdr?reset='));
  assert.ok(lines.length >= 1, px.describe());
  for (const l of lines) assert.doesNotMatch(l, /unknown/, l);
});

test('router: X-Forwarded-Proto and -Port are believed from trusted proxies only', { timeout: 30000 }, async (t) => {
  const app = makeApp(t, 'router-echo', {
    files: { 'phoenix.toml': '[router]\ntrusted_proxies = ["127.0.0.2", "10.0.0.0/8"]\n\n[process.web]\ninstances = 1\n' },
  });
  const px = await up(app);
  await px.waitReady(1);
  const headers = {
    'x-forwarded-for': '198.51.100.4, 203.0.113.9, 10.1.2.3', 'x-forwarded-proto': 'https', 'x-forwarded-port': '8443',
    forwarded: 'for=198.51.100.4;proto=https', 'x-forwarded-host': 'elsewhere.example', 'x-real-ip': '198.51.100.4',
  };

  // From 127.0.0.1, not in the list: a client claiming https gets the router's own values, and
  // what only a proxy may say is gone.
  const direct = await httpGet(px.port, '/direct', { headers });
  assert.equal(direct.json.headers['x-forwarded-proto'], 'http');
  assert.equal(direct.json.headers['x-forwarded-port'], String(px.port));
  assert.equal(direct.json.headers['x-forwarded-for'], '198.51.100.4, 203.0.113.9, 10.1.2.3, 127.0.0.1');
  for (const f of ['forwarded', 'x-forwarded-host', 'x-real-ip']) assert.equal(direct.json.headers[f], undefined, f);
  await px.waitOutput(/path="\/direct" .* fwd="127\.0\.0\.1" .* protocol=http\n/);

  // From the trusted proxy: believed; the log names the client behind 10.1.2.3 (trusted too).
  const proxied = await httpGet(px.port, '/proxied', { headers, localAddress: '127.0.0.2' });
  assert.equal(proxied.json.headers['x-forwarded-proto'], 'https');
  assert.equal(proxied.json.headers['x-forwarded-port'], '8443');
  assert.equal(proxied.json.headers['x-forwarded-for'], '198.51.100.4, 203.0.113.9, 10.1.2.3, 127.0.0.2');
  assert.equal(proxied.json.headers['x-forwarded-host'], 'elsewhere.example');
  assert.equal(proxied.json.headers.forwarded, 'for=198.51.100.4;proto=https');
  await px.waitOutput(/path="\/proxied" .* fwd="203\.0\.113\.9" .* protocol=https\n/);

  // A POST (its head goes out through another path); a proxy that sends the scheme alone (the
  // app gets that scheme's port, not the router's); a value that is not a scheme.
  const post = await httpRequest(px.port, '/post', { method: 'POST', body: 'x', headers, localAddress: '127.0.0.2' });
  assert.equal(post.json.headers['x-forwarded-proto'], 'https');
  const alone = await httpGet(px.port, '/alone', { headers: { 'x-forwarded-proto': 'https' }, localAddress: '127.0.0.2' });
  assert.equal(alone.json.headers['x-forwarded-port'], '443');
  const odd = await httpGet(px.port, '/odd', { headers: { 'x-forwarded-proto': 'javascript' }, localAddress: '127.0.0.2' });
  assert.equal(odd.json.headers['x-forwarded-proto'], 'http');
  assert.equal(odd.json.headers['x-forwarded-port'], String(px.port));
});

test('router: pipelined requests are answered in order; HEAD has no body', { timeout: 30000 }, async (t) => {
  const { px } = await startEcho(t);
  const c = await rawConnect(px.port, { t });
  // The slow one first: the two behind it must wait for it.
  c.write('GET /slow?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n' +
    'HEAD /head HTTP/1.1\r\nHost: x\r\n\r\n' +
    'GET /second HTTP/1.1\r\nHost: x\r\n\r\n' +
    'POST /third HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello' +
    'GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  const methods = ['GET', 'HEAD', 'GET', 'POST', 'GET'];
  await c.waitData((_, data) => parseResponses(data, methods).length === 5, { timeout: 10000, what: '5 responses' });
  await c.waitClosed();
  const rs = parseResponses(c.data, methods);
  assert.deepEqual(rs.map((r) => r.status), [200, 200, 200, 200, 200]);
  assert.equal(rs[0].json.slept, 300);
  assert.equal(rs[1].body, '');
  assert.ok(Number(rs[1].headers['content-length']) > 0, 'HEAD keeps the Content-Length of the GET');
  assert.equal(rs[2].json.url, '/second');
  assert.equal(rs[3].json.url, '/third');
  assert.equal(rs[3].json.body, 'hello');
  assert.equal(rs[4].json.url, '/last');
  assert.equal(rs[4].headers.connection, 'close');
  // Nothing after the last response.
  const total = rs.reduce((n, r) => n + r.body.length, 0);
  assert.ok(c.data.length > total);

  // "close" on a second Connection line counts (and in HTTP/1.0 wins over keep-alive): the
  // answer closes the connection, and the request behind it never reaches the app.
  for (const [version, fields] of [['1.1', 'Connection: keep-alive\r\nConnection: close'], ['1.0', 'Connection: keep-alive, close']]) {
    const d = await rawConnect(px.port, { t });
    d.write(`GET /close-${version} HTTP/${version}\r\nHost: x\r\n${fields}\r\n\r\nGET /not-after-close HTTP/1.1\r\nHost: x\r\n\r\n`);
    await d.waitClosed();
    const rd = parseResponses(d.data, ['GET', 'GET']);
    assert.equal(rd.length, 1, `one answer to HTTP/${version}: ${JSON.stringify(d.text)}`);
    assert.equal(rd[0].json.url, `/close-${version}`);
    assert.equal(rd[0].headers.connection, 'close');
  }
  assert.doesNotMatch(px.stdout, /not-after-close/);

  // HEAD through Node's client, then the connection is still usable.
  const head = await httpRequest(px.port, '/h', { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.body, '');
});

test('router: chunked request and chunked response stream through', { timeout: 30000 }, async (t) => {
  const { px } = await startEcho(t);
  // Node's client sends chunked when there is no Content-Length.
  const parts = ['first part|', 'second part|', 'x'.repeat(100000), '|last'];
  const r = await new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: px.port, path: '/chunked', method: 'POST', timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    for (const p of parts) req.write(p);
    req.end();
  });
  assert.equal(r.status, 200);
  assert.equal(r.headers['transfer-encoding'], 'chunked');
  const inst = r.headers['x-instance'];
  assert.equal(r.body, `[${inst}]${parts.join('')}[end]`);

  // Raw: the app sees a chunked request (no Content-Length invented), and the router's framing.
  const c = await rawConnect(px.port, { t });
  c.write('POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n' +
    '5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n' +
    'GET /after HTTP/1.1\r\nHost: x\r\n\r\n');
  await c.waitData((_, d) => parseResponses(d).length === 2, { what: 'two responses' });
  const [echo, after] = parseResponses(c.data);
  assert.equal(echo.json.body, 'hello, world');
  assert.equal(echo.json.headers['transfer-encoding'], 'chunked');
  assert.equal(echo.json.headers['content-length'], undefined);
  assert.equal(after.json.url, '/after');

  // A chunked response to an HTTP/1.0 client is sent unchunked, ended by close.
  const old = await rawConnect(px.port, { t });
  old.write('POST /chunked HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc');
  await old.waitClosed();
  const text = old.text;
  assert.match(text, /^HTTP\/1\.1 200/, 'HTTP/1.1 to a 1.0 client too (RFC 9110 6.2)');
  assert.doesNotMatch(text, /transfer-encoding/i);
  assert.match(text, /\r\n\r\n\[web\.\d\]abc\[end\]$/);
});

test('router: Expect: 100-continue goes to the app; its 100 Continue or its refusal comes back before any body', { timeout: 30000 }, async (t) => {
  const { px } = await startEcho(t);
  const c = await rawConnect(px.port, { t });
  c.write('POST /expect HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n');
  await c.waitData('HTTP/1.1 100 Continue\r\n\r\n', { what: '100 Continue' });
  assert.ok(!c.text.includes('HTTP/1.1 200'), 'no final answer before the body');
  c.write('hello world');
  await c.waitData((_, d) => parseResponses(d).some((r) => r.status === 200), { what: 'the 200' });
  const rs = parseResponses(c.data);
  assert.equal(rs.length, 2, `one 100 then one 200: ${c.text}`);
  assert.equal(rs[0].status, 100);
  assert.equal(rs[1].json.body, 'hello world');
  assert.equal(rs[1].json.headers.expect, '100-continue', 'the app sees Expect and decides (RFC 9110 10.1.1)');

  // The app refuses before the body (an auth or quota check in Node's checkContinue): the
  // client gets the 401 at once and sends none of its 20 MB, as when it talks to the app.
  const d = await rawConnect(px.port, { t });
  d.write('POST /deny HTTP/1.1\r\nHost: x\r\nContent-Length: 20000000\r\nExpect: 100-continue\r\n\r\n');
  await d.waitData('no upload for you', { what: 'the refusal before any body' });
  assert.match(d.text, /^HTTP\/1\.1 401 /, d.text);
  assert.doesNotMatch(d.text, / 100 Continue/);

  // Node's own client waits for 100 Continue too.
  const r = await new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: px.port, path: '/expect2', method: 'PUT',
      headers: { expect: '100-continue', 'content-length': 4 }, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, json: JSON.parse(body) }));
    });
    req.on('continue', () => req.end('data'));
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
  assert.equal(r.status, 200);
  assert.equal(r.json.body, 'data');
  assert.equal(r.json.method, 'PUT');
});

test('router: a client waiting for 100 Continue from an app that never answers gets a 504, not a 408', { timeout: 30000 }, async (t) => {
  // The client does as RFC 9110 10.1.1 lets it: it waits for the 100. The one late is the app.
  const { px } = await startEcho(t, '[router]\nresponse_timeout = "2s"\n');
  const c = await rawConnect(px.port, { t });
  c.write('POST /silent HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n');
  await c.waitData(/^HTTP\/1\.1 \d{3} /, { what: 'an answer', timeout: 10000 });
  assert.match(c.text, /^HTTP\/1\.1 504 /, c.text);
  await px.waitOutput(/code=H12 .*path="\/silent" .*status=504/);
  // The client chose to wait for that 100: the instance is not taken for a slow one (which
  // would send every request to the other for 10 s), else any client could do that to all.
  const seen = {};
  for (let i = 0; i < 8; i++) {
    const r = await httpRequest(px.port, `/after-silent/${i}`, { headers: { connection: 'close' } });
    seen[r.json.instance] = (seen[r.json.instance] || 0) + 1;
  }
  assert.deepEqual(Object.keys(seen).sort(), ['web.1', 'web.2'], JSON.stringify(seen));
});

test('router: 503 with Retry-After when no instance is ready', { timeout: 30000 }, async (t) => {
  // `sleeper` never listens on $PORT, so it is never ready.
  const app = makeApp(t, 'sleeper', { files: { 'phoenix.toml': '[router]\nretry_timeout = "0"\n\n[process.web]\ninstances = 1\nboot_timeout = "5s"\nstop_timeout = "1s"\n' } });
  const px = await up(app);
  await px.waitEvent((e) => e.event === 'born' && e.instance === 'web.1', { what: 'web.1 born' });
  const start = Date.now();
  const r = await httpGet(px.port, '/nothing');
  const took = Date.now() - start;
  assert.equal(r.status, 503);
  assert.ok(r.headers['retry-after'], 'Retry-After');
  assert.ok(took < 1000, `retry_timeout 0 answers at once (took ${took} ms)`);
  assert.match(r.headers['x-request-id'], UUID4);
  await px.waitOutput(/router  \| at=error code=H14 desc="No web instances running" method=GET path="\/nothing" .*status=503/);
  // The connection stays usable after a 503 to a GET.
  const again = await httpGet(px.port, '/again');
  assert.equal(again.status, 503);
  // phoenix's own answer to a HEAD has no body either: two HEADs and a GET on one connection
  // get three answers, each where it belongs (a body after a HEAD's head was read as the next
  // response).
  const c = await rawConnect(px.port, { t });
  c.write('HEAD /h1 HTTP/1.1\r\nHost: x\r\n\r\nHEAD /h2 HTTP/1.1\r\nHost: x\r\n\r\nGET /g HTTP/1.1\r\nHost: x\r\n\r\n');
  const methods = ['HEAD', 'HEAD', 'GET'];
  await c.waitData((_, data) => parseResponses(data, methods).length === 3, { timeout: 10000, what: '3 answers' });
  const rs = parseResponses(c.data, methods);
  assert.deepEqual(rs.map((r) => r.status), [503, 503, 503]);
  assert.equal(rs[0].body, '');
  assert.equal(rs[1].body, '');
  assert.equal(rs[2].body, '503 Service Unavailable\n');
  assert.ok(c.text.endsWith('\r\n\r\n503 Service Unavailable\n'), JSON.stringify(c.text));
  assert.equal(c.text.split('HTTP/1.1 503').length - 1, 3, JSON.stringify(c.text));
  // Nor when the router refuses the HEAD itself (417: an expectation it cannot meet).
  const e = await rawConnect(px.port, { t });
  e.write('HEAD /h HTTP/1.1\r\nHost: x\r\nExpect: foo\r\n\r\n');
  await e.waitClosed();
  assert.match(e.text, /^HTTP\/1\.1 417 [^]*\r\n\r\n$/, JSON.stringify(e.text));
});

test('router: with retry_timeout, a request waits for an instance before its 503', { timeout: 30000 }, async (t) => {
  const app = makeApp(t, 'sleeper', { files: { 'phoenix.toml': '[router]\nretry_timeout = "1s"\n\n[process.web]\ninstances = 1\nboot_timeout = "5s"\nstop_timeout = "1s"\n' } });
  const px = await up(app);
  await px.waitEvent((e) => e.event === 'born' && e.instance === 'web.1', { what: 'web.1 born' });
  const start = Date.now();
  const r = await httpGet(px.port, '/wait');
  const took = Date.now() - start;
  assert.equal(r.status, 503);
  assert.ok(took >= 900 && took < 4000, `waited about retry_timeout (took ${took} ms)`);
});

test('router: 504 when the instance does not answer within response_timeout', { timeout: 30000 }, async (t) => {
  const { px } = await startEcho(t, '[router]\nresponse_timeout = "1s"\n\n[process.web]\ninstances = 2\nstop_timeout = "1s"\n');
  const start = Date.now();
  const r = await httpGet(px.port, '/slow?ms=4000', { timeout: 8000 });
  const took = Date.now() - start;
  assert.equal(r.status, 504);
  assert.ok(took >= 900 && took < 3000, `after about 1 s (took ${took} ms)`);
  await px.waitOutput(/router  \| at=error code=H12 .*path="\/slow\?ms=4000".*status=504/);
  // Others are served meanwhile and after.
  const ok = await httpGet(px.port, '/fine');
  assert.equal(ok.status, 200);
});

test('router: an absolute-form target goes on in origin-form, its authority as Host', { timeout: 30000 }, async (t) => {
  // RFC 9112 3.2.2: the target's authority is the request's host, whatever Host says; the app
  // gets the host that was checked, and a path it routes as usual.
  const { px } = await startEcho(t);
  const c = await rawConnect(px.port, { t });
  c.write('GET http://Shop.example:8080/cart?id=3 HTTP/1.1\r\nHost: other.example\r\n\r\n');
  await c.waitData((text) => /\r\n\r\n\{.*\}$/s.test(text), { what: 'the echo' });
  const echo = JSON.parse(c.text.slice(c.text.indexOf('\r\n\r\n') + 4));
  assert.equal(echo.url, '/cart?id=3');
  assert.equal(echo.headers.host, 'Shop.example:8080');
});

test('router: empty lines before a request are ignored; no 1xx reaches an HTTP/1.0 client', { timeout: 30000 }, async (t) => {
  const { px } = await startEcho(t);
  // RFC 9112 2.2: a CRLF before the request line (some clients send one after a POST body).
  const c = await rawConnect(px.port, { t });
  c.write('\r\n\r\nGET /first HTTP/1.1\r\nHost: x\r\n\r\n');
  await c.waitData('"url":"/first"', { what: 'the answer behind empty lines' });
  c.write('POST /post HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n');
  await c.waitData('"url":"/next"', { what: 'the request behind a POST body and a CRLF' });
  assert.deepEqual(parseResponses(c.data, ['GET', 'POST', 'GET']).map((r) => r.status), [200, 200, 200], c.text);
  // The CRLF alone after a body: the connection waits for the next request, as any idle one.
  c.write('POST /post2 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx\r\n');
  await c.waitData('"url":"/post2"', { what: 'the second POST' });
  c.write('GET /last HTTP/1.1\r\nHost: x\r\n\r\n');
  await c.waitData('"url":"/last"', { what: 'the request after the lone CRLF' });
  assert.equal(c.closed, false);
  // An empty line's CR and LF in two reads (the pause splits the bytes; nothing waits on it).
  c.socket.setNoDelay(true);
  c.write('\r');
  await new Promise((resolve) => setTimeout(resolve, 200));
  c.write('\nGET /split-crlf HTTP/1.1\r\nHost: x\r\n\r\n');
  await c.waitData('"url":"/split-crlf"', { what: 'the request after a split empty line' });

  // The request goes on as HTTP/1.1, so the app may send 103 Early Hints: an HTTP/1.0 client
  // would take it for the answer (RFC 9110 15.2: no 1xx to a 1.0 client).
  const old = await rawConnect(px.port, { t });
  old.write('GET /hints HTTP/1.0\r\n\r\n');
  await old.waitClosed();
  assert.match(old.text, /^HTTP\/1\.1 200 /, old.text);
  assert.doesNotMatch(old.text, / 103 /);
});

test('router: 1xx informational answers pass; a body ended by close; HTTP/1.0 keep-alive', { timeout: 30000 }, async (t) => {
  const { px } = await startEcho(t);
  // 103 Early Hints, then the 200, on one connection that stays usable.
  const c = await rawConnect(px.port, { t });
  c.write('GET /hints HTTP/1.1\r\nHost: x\r\n\r\n');
  await c.waitData((_, d) => parseResponses(d).some((r) => r.status === 200), { what: 'the 200 after the 103' });
  const rs = parseResponses(c.data);
  assert.deepEqual(rs.map((r) => r.status), [103, 200], c.text);
  assert.match(rs[0].headers.link, /style\.css/);
  assert.equal(rs[1].json.hinted, true);
  c.write('GET /next HTTP/1.1\r\nHost: x\r\n\r\n');
  await c.waitData('"url":"/next"', { what: 'the next answer' });

  // A body delimited by the end of the app's connection: chunked to an HTTP/1.1 client, whose
  // connection goes on (as nginx sends it); as it came to an HTTP/1.0 one, then closed.
  const u = await rawConnect(px.port, { t });
  u.write('GET /until-close HTTP/1.1\r\nHost: x\r\n\r\n');
  await u.waitData((text) => text.endsWith('0\r\n\r\n'), { what: 'the chunked answer' });
  assert.match(u.text, /^HTTP\/1\.1 200 [^]*\r\nTransfer-Encoding: chunked\r\n/);
  assert.match(u.text, /\r\n\r\n10\r\nbody until close\r\n0\r\n\r\n$/);
  u.write('GET /after-until-close HTTP/1.1\r\nHost: x\r\n\r\n');
  await u.waitData('"url":"/after-until-close"', { what: 'the next answer on that connection' });
  const u0 = await rawConnect(px.port, { t });
  u0.write('GET /until-close HTTP/1.0\r\n\r\n');
  await u0.waitClosed();
  assert.match(u0.text, /^HTTP\/1\.1 200 /);
  assert.match(u0.text, /\r\n\r\nbody until close$/);

  // A client that ends its side right behind its request (the request and the FIN read in one
  // go): answered, then closed, not left to the idle timeout.
  const h = await rawConnect(px.port, { t });
  h.socket.end('GET /half-closed HTTP/1.1\r\nHost: x\r\n\r\n');
  await h.waitClosed({ timeout: 3000 });
  assert.equal(parseResponses(h.data).length, 1, h.text);
  assert.equal(parseResponses(h.data)[0].json.url, '/half-closed');

  // HTTP/1.0 with keep-alive: answered (as HTTP/1.1, RFC 9110 6.2) with Content-Length, the connection kept.
  const k = await rawConnect(px.port, { t });
  k.write('GET /old-1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
  await k.waitData((_, d) => parseResponses(d).length === 1, { what: 'the first answer' });
  k.write('GET /old-2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
  await k.waitData((_, d) => parseResponses(d).length === 2, { what: 'the second answer' });
  const [a, b] = parseResponses(k.data);
  assert.match(a.head, /^HTTP\/1\.1 200/);
  assert.equal(a.headers.connection, 'keep-alive');
  assert.equal(a.json.url, '/old-1');
  assert.equal(b.json.url, '/old-2');
  assert.equal(a.json.headers.host, `127.0.0.1:${px.port}`, 'a 1.0 request without Host gets one upstream');
  // And without keep-alive, HTTP/1.0 closes after the answer.
  const o = await rawConnect(px.port, { t });
  o.write('GET /old-3 HTTP/1.0\r\n\r\n');
  await o.waitClosed();
  assert.match(o.text, /^HTTP\/1\.1 200 /);
  // A higher minor version is read as HTTP/1.1 (RFC 9110 2.5), the connection kept.
  const n = await rawConnect(px.port, { t });
  n.write('GET /minor-2 HTTP/1.2\r\nHost: x\r\n\r\n');
  await n.waitData((_, d) => parseResponses(d).length === 1, { what: 'the HTTP/1.2 answer' });
  n.write('GET /minor-9 HTTP/1.9\r\nHost: x\r\n\r\n');
  await n.waitData((_, d) => parseResponses(d).length === 2, { what: 'the HTTP/1.9 answer' });
  const [m2, m9] = parseResponses(n.data);
  assert.match(m2.head, /^HTTP\/1\.1 200/);
  assert.equal(m2.json.url, '/minor-2');
  assert.equal(m9.json.url, '/minor-9');
});

test('router: balance = "least-outstanding" steers around a busy instance', { timeout: 30000 }, async (t) => {
  const { px } = await startEcho(t, '[router]\nbalance = "least-outstanding"\n\n[process.web]\ninstances = 2\nstop_timeout = "1s"\n');
  const id = 'least-outstanding-slow-0001';
  const slow = httpRequest(px.port, '/slow?ms=1500', { headers: { 'x-request-id': id }, timeout: 10000 });
  await px.waitOutput(new RegExp(`(web\\.\\d)\\s*\\| slow start ${id}`));
  const busy = new RegExp(`(web\\.\\d)\\s*\\| slow start ${id}`).exec(px.stdout)[1];
  for (let i = 0; i < 8; i++) {
    const r = await httpGet(px.port, `/quick-${i}`);
    assert.notEqual(r.json.instance, busy, `request ${i} went to the busy ${busy}`);
  }
  assert.equal((await slow).status, 200);
  // Idle again: both are used.
  const seen = new Set();
  for (let i = 0; i < 8; i++) seen.add((await httpGet(px.port, `/after-${i}`)).json.instance);
  assert.equal(seen.size, 2);
});

test('router: a request that kills its instance is sent once more at most, then 502', { timeout: 30000 }, async (t) => {
  // A GET is retried when its instance died before answering (it may have died by chance), but
  // a request that kills every instance it reaches must not take the whole fleet down with it.
  const app = makeApp(t, 'router-echo', { files: { 'phoenix.toml': '[process.web]\ninstances = 3\n' } });
  const px = await up(app);
  await px.waitReady(3);
  const id = 'request-of-death-0123456789';
  const r = await httpGet(px.port, '/crash', { headers: { 'x-request-id': id }, timeout: 10000 });
  assert.equal(r.status, 502, r.text);
  await px.waitEvents((ev) => ev.filter((e) => e.event === 'died').length >= 2, { what: 'two deaths' });
  // The third instance never got it, and serves on.
  const seen = new Set();
  for (let i = 0; i < 6; i++) {
    const g = await httpGet(px.port, `/after-crash-${i}`);
    assert.equal(g.status, 200, g.text);
    seen.add(g.json.instance);
  }
  assert.equal((px.stdout.match(new RegExp(`crash on ${id}`, 'g')) || []).length, 2, px.stdout);
  assert.equal(px.events().filter((e) => e.event === 'died').length, 2);
  await px.waitOutput(/code=H13 .*path="\/crash".*status=502/);  // (the log is flushed every 100 ms)
});

test('router: an instance that let a request time out gets the next ones only when no other can', { timeout: 60000 }, async (t) => {
  // A hung instance still accepts connections, so it stays ready: without passive marking
  // every other request would wait response_timeout for a 504 (as nginx's max_fails avoids).
  const app = makeApp(t, 'router-echo', { files: { 'phoenix.toml': '[router]\nresponse_timeout = "1s"\n\n[process.web]\ninstances = 2\n' } });
  const px = await up(app);
  await px.waitReady(2);
  const hung = (await httpGet(px.port, '/hang-me')).json.instance;
  const statuses = [];
  for (let i = 0; i < 10; i++) {
    const r = await httpGet(px.port, `/after-hang-${i}`, { timeout: 10000 });
    statuses.push(r.status);
    if (r.status === 200) assert.notEqual(r.json.instance, hung);
  }
  assert.ok(statuses.filter((s) => s === 504).length <= 1, statuses.join(' '));
});

test('router: an instance that listens on ::1 only is served there', { timeout: 30000 }, async (t) => {
  // Bound to "localhost" an app may get ::1 alone. It is ready (it accepts on ::1), so the
  // router must reach it there too, not refuse every request with 502.
  const app = makeApp(t, 'router-echo', {
    files: { 'phoenix.toml': '[process.web]\ninstances = 2\n', '.env': 'LISTEN_HOST=::1\n' },
  });
  const px = await up(app);
  await px.waitReady(2);
  const seen = new Set();
  for (let i = 0; i < 6; i++) {
    const r = await httpGet(px.port, `/v6/${i}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.url, `/v6/${i}`);
    seen.add(r.json.instance);
  }
  assert.equal(seen.size, 2);
  const body = 'x'.repeat(100000);
  const p = await httpRequest(px.port, '/v6/post', { method: 'POST', body, headers: { 'content-type': 'text/plain' } });
  assert.equal(p.status, 200, p.text);
  assert.equal(p.json.body, body);
});

test('router: a POST is not sent on a pooled connection the instance has since closed', { timeout: 30000 }, async (t) => {
  // The app closes idle keep-alive connections after 200 ms, before the router's pool drops
  // them (2 s). The head written on such a connection meets a RST at once, before any of the
  // body is taken from the client: the POST goes again on a fresh connection, intact.
  const app = makeApp(t, 'router-echo', {
    files: { 'phoenix.toml': '[process.web]\ninstances = 1\n', '.env': 'KEEP_ALIVE_MS=200\n' },
  });
  const px = await up(app);
  await px.waitReady(1);
  for (let i = 0; i < 3; i++) {
    const g = await httpGet(px.port, `/warm/${i}`);  // leaves a connection in the pool
    assert.equal(g.status, 200);
    await new Promise((resolve) => setTimeout(resolve, 600));  // the app closes it meanwhile
    const body = `payload ${i} `.repeat(100000);  // ~1 MB: streamed, not in the head's read
    const r = await httpRequest(px.port, `/post/${i}`, { method: 'POST', body, headers: { 'content-type': 'text/plain' } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.body, body);
  }
});
