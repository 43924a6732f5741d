// Request smuggling: each ambiguous framing is refused with 400 (501 for a transfer coding the
// router does not implement) and the connection closed, and the request hidden behind it never
// reaches an instance. The app prints "seen METHOD URL" for every request head it gets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeApp, up, rawConnect, httpGet, waitFor } from './harness.mjs';

const hidden = (n) => `GET /smuggled-${n} HTTP/1.1\r\nHost: x\r\n\r\n`;
const chunkOf = (s) => `${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`;

// [name, raw bytes, allowed statuses, whether the outer request's head may reach the app]
// The last is true only where the head is sound and the fault is in the body, which the router
// sees only after it sent the head on (as every streaming proxy does).
const VECTORS = [
  ['CL.TE', `POST /v HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${hidden(1)}`],
  ['TE.CL', `POST /v HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n${chunkOf(hidden(2))}0\r\n\r\n`],
  ['TE.CL with CL 0', `POST /v HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n${chunkOf(hidden(3))}0\r\n\r\n`],
  ['differing duplicate Content-Length', `POST /v HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: ${hidden(4).length}\r\n\r\n${hidden(4)}`],
  ['differing Content-Length list', `POST /v HTTP/1.1\r\nHost: x\r\nContent-Length: 0, ${hidden(5).length}\r\n\r\n${hidden(5)}`],
  ['Content-Length with a sign', `POST /v HTTP/1.1\r\nHost: x\r\nContent-Length: +${hidden(6).length}\r\n\r\n${hidden(6)}`],
  ['Content-Length in hex', `POST /v HTTP/1.1\r\nHost: x\r\nContent-Length: 0x${hidden(7).length.toString(16)}\r\n\r\n${hidden(7)}`],
  ['Content-Length not a number', `POST /v HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n${hidden(8)}`],
  ['obs-fold of Transfer-Encoding', `POST /v HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n${hidden(9)}`],
  ['obs-fold hiding Transfer-Encoding', `POST /v HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n${hidden(10)}`],
  ['Transfer-Encoding xchunked', `POST /v HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n${hidden(11)}`],
  ['Transfer-Encoding chunked, identity', `POST /v HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n${hidden(12)}`],
  ['Transfer-Encoding identity', `POST /v HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n${hidden(13)}`],
  ['Transfer-Encoding gzip, chunked', `POST /v HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n${hidden(14)}`, [400, 501]],
  ['two Transfer-Encoding fields', `POST /v HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${hidden(15)}`, [400, 501]],
  ['Transfer-Encoding chunked twice', `POST /v HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${hidden(16)}`, [400, 501]],
  ['space before the colon', `POST /v HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n${hidden(17)}`],
  ['vertical tab in Transfer-Encoding', `POST /v HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n${hidden(18)}`],
  ['Transfer-Encoding in HTTP/1.0', `POST /v HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${hidden(19)}`],
  ['missing Host', `GET /v HTTP/1.1\r\n\r\n${hidden(20)}`],
  ['duplicate Host', `GET /v HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n${hidden(21)}`],
  ['bare LF between fields', `POST /v HTTP/1.1\r\nHost: x\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n${hidden(22)}`],
  ['bare CR in a field', `POST /v HTTP/1.1\r\nHost: x\r\nX-A: a\rTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${hidden(23)}`],
  ['bare LF after the request line', `POST /v HTTP/1.1\nHost: x\r\nContent-Length: 0\r\n\r\n${hidden(24)}`],
  ['NUL in a field', `POST /v HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\nContent-Length: 0\r\n\r\n${hidden(25)}`],
  ['bad chunk size', `POST /v HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n${hidden(26)}\r\n0\r\n\r\n`, [400], true],
  ['chunk size overflow', `POST /v HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000${Buffer.byteLength(hidden(27)).toString(16)}\r\n${hidden(27)}\r\n0\r\n\r\n`, [400], true],
  ['negative chunk size', `POST /v HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n${hidden(28)}\r\n0\r\n\r\n`, [400], true],
  ['chunk data longer than its size', `POST /v HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n${hidden(29)}`, [400], true],
  ['invalid Host', `GET /v HTTP/1.1\r\nHost: a b\r\n\r\n${hidden(35)}`],
  ['Host with userinfo', `GET /v HTTP/1.1\r\nHost: user@evil.example\r\n\r\n${hidden(36)}`],
  ['absolute-form target with userinfo', `GET http://user@evil.example/v HTTP/1.1\r\nHost: x\r\n\r\n${hidden(37)}`],
  ['HTTP/2.0 request line', `GET /v HTTP/2.0\r\nHost: x\r\n\r\n${hidden(31)}`, [505]],
  ['HTTP/2 preface', `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n${hidden(32)}`, [505]],
  ['HTTP/0.9 request line', `GET /v HTTP/0.9\r\nHost: x\r\n\r\n${hidden(33)}`, [505]],
  ['version with two minor digits', `GET /v HTTP/1.10\r\nHost: x\r\n\r\n${hidden(34)}`],
  // A bare LF inside a quoted chunk extension ends the line for HAProxy and nginx: a proxy in
  // front would read the body's end elsewhere (RFC 9112 7.1.1, 9110 5.6.4: no CTL there).
  ['LF in a quoted chunk extension', `POST /v HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a="\n"\r\nhello\r\n0\r\n\r\n${hidden(38)}`, [400], true],
  ['LF in the last chunk\'s extension', `POST /v HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0;a="\n"\r\n\r\n${hidden(39)}`, [400], true],
  ['chunk size line ended by bare LF', `POST /v HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\n\r\n${hidden(30)}`, [400], true],
];

test('router: every smuggling vector is refused, the connection closed, nothing hidden forwarded', { timeout: 60000 }, async (t) => {
  const app = makeApp(t, 'router-echo', { files: { '.env': 'LOG_REQUESTS=1\n' } });
  const px = await up(app);
  await px.waitReady(2);

  const failures = [];
  for (const [name, raw, statuses = [400], headMayPass = false] of VECTORS) {
    const before = px.stdout.length;
    const c = await rawConnect(px.port, { t });
    c.write(Buffer.from(raw, 'latin1'));
    try {
      await c.waitClosed({ timeout: 5000 });
    } catch {
      failures.push(`${name}: connection still open; received ${JSON.stringify(c.text)}`);
      c.destroy();
      continue;
    }
    const status = /^HTTP\/1\.1 (\d{3}) /.exec(c.text);
    const responses = c.text.match(/HTTP\/1\.[01] \d{3} /g) || [];
    if (!status || !statuses.includes(Number(status[1]))) {
      failures.push(`${name}: expected ${statuses.join(' or ')}, received ${JSON.stringify(c.text)}`);
    } else if (responses.length !== 1) {
      failures.push(`${name}: ${responses.length} responses: ${JSON.stringify(c.text)}`);
    } else if (!/\r\nConnection: close\r\n/i.test(c.text)) {
      failures.push(`${name}: no Connection: close in ${JSON.stringify(c.text)}`);
    }
    // The outer request's head itself must not reach the app when the head is at fault.
    if (!headMayPass) {
      await httpGet(px.port, `/sentinel-after-${encodeURIComponent(name)}`);
      await px.waitOutput(`seen GET /sentinel-after-${encodeURIComponent(name)}`);
      const during = px.stdout.slice(before);
      if (/\| seen POST \/v\b|\| seen GET \/v\b/.test(during)) failures.push(`${name}: the refused request reached the app:\n${during}`);
    }
  }

  // Every instance has printed a request sent after the last vector, so anything smuggled
  // before it would be printed by now.
  const sentinels = new Set();
  await waitFor(async () => {
    const r = await httpGet(px.port, '/sentinel-final');
    sentinels.add(r.json.instance);
    return sentinels.size === 2;
  }, { timeout: 5000, what: 'both instances to answer a sentinel' });
  await waitFor(() => (px.stdout.match(/\| seen GET \/sentinel-final/g) || []).length >= 2, { timeout: 5000, what: 'sentinels printed' });
  const smuggled = px.stdout.split('\n').filter((l) => l.includes('/smuggled-'));
  assert.deepEqual(smuggled, [], `smuggled requests reached an instance:\n${smuggled.join('\n')}`);
  assert.deepEqual(failures, [], failures.join('\n\n'));

  // Refusals are logged as router errors.
  assert.match(px.stdout, /router  \| at=error code=H400 desc="content-length with transfer-encoding"|router  \| at=error code=H400 desc="[^"]*" .*status=400/);
});

test('router: Transfer-Encoding among empty list elements goes on as one chunked line', { timeout: 30000 }, async (t) => {
  // Empty list elements are valid (RFC 9110 5.6.1), so the router reads "chunked" and decodes
  // the body. Sent on as it came, an app that reads the first (empty) line sees no framing and
  // takes the decoded body for a request of its own: one client's response would then answer
  // another's request.
  const app = makeApp(t, 'router-echo', { files: { '.env': 'LOG_REQUESTS=1\n', 'phoenix.toml': '[process.web]\ninstances = 1\n' } });
  const px = await up(app);
  await px.waitReady(1);
  const inner = `0\r\n\r\n${hidden(40)}`;
  for (const first of ['', ',', ' \t']) {
    const c = await rawConnect(px.port, { t });
    c.write(`POST /te-list HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ${first}\r\nTransfer-Encoding: chunked\r\n\r\n${chunkOf(inner)}0\r\n\r\n`);
    await c.waitData((text) => /\r\n\r\n\{.*\}$/s.test(text), { what: 'the echo of the POST' });
    assert.match(c.text, /^HTTP\/1\.1 200 /, c.text);
    const echo = JSON.parse(c.text.slice(c.text.indexOf('\r\n\r\n') + 4));
    assert.equal(echo.body, inner, JSON.stringify(first));
    c.destroy();
  }
  await httpGet(px.port, '/sentinel-te-list');
  await px.waitOutput('seen GET /sentinel-te-list');
  assert.doesNotMatch(px.stdout, /smuggled-40/);
});

test('router: an endless chunk-size line or trailer is refused, not buffered', { timeout: 30000 }, async (t) => {
  // The head limit does not bound what the parser holds between chunks: without a bound of its
  // own, one client makes the router keep every byte it sends.
  const app = makeApp(t, 'router-echo');
  const px = await up(app);
  await px.waitReady(2);
  for (const [name, start] of [['chunk extension', '5;a='], ['trailer', '0\r\nX-T: ']]) {
    const c = await rawConnect(px.port, { t });
    c.socket.on('error', () => {});
    c.write(`POST /endless HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${start}`);
    c.write('b'.repeat(4 << 20));
    await c.waitClosed({ timeout: 10000 });
    assert.match(c.text, /^HTTP\/1\.1 400 /, `${name}: ${JSON.stringify(c.text.slice(0, 200))}`);
  }
  assert.equal((await httpGet(px.port, '/after-endless')).status, 200);
});

test('router: a refused request does not disturb the connections of others', { timeout: 30000 }, async (t) => {
  const app = makeApp(t, 'router-echo');
  const px = await up(app);
  await px.waitReady(2);
  // A good keep-alive connection: one request, then a smuggling attempt elsewhere, then another.
  const good = await rawConnect(px.port, { t });
  good.write('GET /one HTTP/1.1\r\nHost: x\r\n\r\n');
  await good.waitData('"url":"/one"', { what: 'the first answer' });
  const bad = await rawConnect(px.port, { t });
  bad.write(VECTORS[0][1]);
  await bad.waitClosed();
  good.write('GET /two HTTP/1.1\r\nHost: x\r\n\r\n');
  await good.waitData('"url":"/two"', { what: 'the second answer' });
  assert.equal(good.closed, false);
  assert.equal((good.text.match(/HTTP\/1\.1 200 /g) || []).length, 2);

  // Pipelined behind a good request on the same connection: the good one is answered, then 400.
  const mixed = await rawConnect(px.port, { t });
  mixed.write(`GET /first HTTP/1.1\r\nHost: x\r\n\r\n${VECTORS[1][1]}`);
  await mixed.waitClosed();
  const statuses = (mixed.text.match(/HTTP\/1\.1 (\d{3}) /g) || []).map((s) => s.slice(9, 12));
  assert.deepEqual(statuses, ['200', '400'], mixed.text);
});

test('router: obs-fold is refused even when the head comes in several reads', { timeout: 30000 }, async (t) => {
  const app = makeApp(t, 'router-echo', { files: { '.env': 'LOG_REQUESTS=1\n' } });
  const px = await up(app);
  await px.waitReady(2);
  // The folded field comes first, then a pause so that the router reads the head in two parts
  // (the pause splits the bytes; nothing waits on it).
  const c = await rawConnect(px.port, { t });
  c.socket.setNoDelay(true);
  c.write('POST /folded HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\nX-After: 1\r\n');
  await new Promise((resolve) => setTimeout(resolve, 300));
  c.write(`\r\n0\r\n\r\n${hidden(99)}`);
  await c.waitClosed();
  assert.match(c.text, /^HTTP\/1\.1 400 /, c.text);
  await httpGet(px.port, '/sentinel-fold');
  await px.waitOutput('seen GET /sentinel-fold');
  assert.doesNotMatch(px.stdout, /seen POST \/folded|smuggled-99/);
});

test('router: the 400 reaches the client even when it is still sending (lingering close)', { timeout: 30000 }, async (t) => {
  const app = makeApp(t, 'router-echo');
  const px = await up(app);
  await px.waitReady(2);
  // A refused head followed by 1 MiB the router never reads: closing at once, with those bytes
  // unread, would reset the connection and the client could lose the answer.
  let lost = 0;
  for (let i = 0; i < 10; i++) {
    const c = await rawConnect(px.port, { t });
    c.socket.on('error', () => {});
    c.write(`POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n${'z'.repeat(1 << 20)}`);
    await c.waitClosed({ timeout: 5000 });
    if (!c.text.startsWith('HTTP/1.1 400 ')) lost++;
  }
  assert.equal(lost, 0, `${lost} of 10 clients never saw their 400`);
});
