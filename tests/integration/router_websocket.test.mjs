// WebSocket through the router: the Upgrade handshake reaches the app, its 101 comes back, and
// from then on the connection is a tunnel both ways (frames echoed, bytes sent right behind the
// handshake kept, close passed through).
import { test } from 'node:test';
import net from 'node:net';
import fs from 'node:fs';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { makeApp, up, rawConnect, httpGet, phoenix, waitFor, vmRssKb } from './harness.mjs';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** A client frame (always masked, RFC 6455 5.3). */
function clientFrame(opcode, payload) {
  const data = Buffer.from(payload);
  const mask = crypto.randomBytes(4);
  let head;
  if (data.length < 126) {
    head = Buffer.from([0x80 | opcode, 0x80 | data.length]);
  } else if (data.length < 65536) {
    head = Buffer.alloc(4);
    head[0] = 0x80 | opcode; head[1] = 0x80 | 126; head.writeUInt16BE(data.length, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = 0x80 | opcode; head[1] = 0x80 | 127; head.writeBigUInt64BE(BigInt(data.length), 2);
  }
  const masked = Buffer.alloc(data.length);
  for (let i = 0; i < data.length; i++) masked[i] = data[i] ^ mask[i % 4];
  return Buffer.concat([head, mask, masked]);
}

/** Server frames (unmasked) in `buf`; returns [{ opcode, payload }] of the complete ones. */
function serverFrames(buf) {
  const out = [];
  let at = 0;
  while (buf.length - at >= 2) {
    const opcode = buf[at] & 0x0f;
    let len = buf[at + 1] & 0x7f;
    let off = at + 2;
    if (len === 126) { if (buf.length - at < 4) break; len = buf.readUInt16BE(at + 2); off = at + 4; }
    else if (len === 127) { if (buf.length - at < 10) break; len = Number(buf.readBigUInt64BE(at + 2)); off = at + 10; }
    if (buf.length < off + len) break;
    out.push({ opcode, payload: buf.subarray(off, off + len) });
    at = off + len;
  }
  return out;
}

function handshake(key, path = '/ws') {
  return `GET ${path} HTTP/1.1\r\nHost: example.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
}

/** The bytes after the 101 response head. */
function afterHead(c) {
  const end = c.data.indexOf('\r\n\r\n');
  return end < 0 ? Buffer.alloc(0) : c.data.subarray(end + 4);
}

test('router: WebSocket upgrade and echo through the tunnel', { timeout: 30000 }, async (t) => {
  const app = makeApp(t, 'router-echo');
  const px = await up(app);
  await px.waitReady(2);

  const key = crypto.randomBytes(16).toString('base64');
  const c = await rawConnect(px.port, { t });
  c.write(handshake(key));
  await c.waitData('\r\n\r\n', { what: 'the handshake response' });
  const head = c.text.slice(0, c.text.indexOf('\r\n\r\n'));
  assert.match(head, /^HTTP\/1\.1 101 /, head);
  const accept = crypto.createHash('sha1').update(key + GUID).digest('base64');
  assert.match(head, new RegExp(`\\r\\nSec-WebSocket-Accept: ${accept.replace(/[+/=]/g, '\\$&')}(\\r\\n|$)`, 'i'));
  assert.match(head, /\r\nUpgrade: websocket(\r\n|$)/i);
  assert.match(head, /\r\nConnection: upgrade(\r\n|$)/i);
  const instance = /\r\nX-Instance: (web\.\d)/i.exec(head)[1];

  // Text, then binary of 70 000 bytes (64-bit length), then a ping: each echoed in order.
  c.write(clientFrame(0x1, 'hello through phoenix'));
  const big = crypto.randomBytes(70000);
  c.write(clientFrame(0x2, big));
  c.write(clientFrame(0x9, 'ping?'));
  await c.waitData(() => serverFrames(afterHead(c)).length >= 3, { what: 'three frames back' });
  const frames = serverFrames(afterHead(c));
  assert.equal(frames[0].opcode, 0x1);
  assert.equal(frames[0].payload.toString(), 'hello through phoenix');
  assert.equal(frames[1].opcode, 0x2);
  assert.ok(frames[1].payload.equals(big), 'the binary frame came back intact');
  assert.equal(frames[2].opcode, 0xa, 'pong');
  assert.equal(frames[2].payload.toString(), 'ping?');

  // Close: the app answers with a close frame and ends; the router closes the client side.
  c.write(clientFrame(0x8, Buffer.from([0x03, 0xe8])));
  await c.waitClosed();
  const last = serverFrames(afterHead(c)).at(-1);
  assert.equal(last.opcode, 0x8);
  await px.waitOutput(new RegExp(`router  \\| at=info method=GET path="/ws" .*dyno=${instance.replace('.', '\\.')} .*status=101`));
  // The log line counts what the app sent through the tunnel, as a body's bytes.
  const line = px.stdout.split('\n').find((l) => /path="\/ws" .*status=101/.test(l));
  const bytes = Number(/ bytes=(\d+)/.exec(line)[1]);
  const sent = afterHead(c).length;
  assert.equal(bytes, sent, line);
});

test('router: bytes sent right behind the handshake reach the app', { timeout: 30000 }, async (t) => {
  const app = makeApp(t, 'router-echo');
  const px = await up(app);
  await px.waitReady(2);
  const key = crypto.randomBytes(16).toString('base64');
  const c = await rawConnect(px.port, { t });
  // One write: the handshake and a frame, before any 101 came back.
  c.write(Buffer.concat([Buffer.from(handshake(key)), clientFrame(0x1, 'early bird')]));
  await c.waitData(() => serverFrames(afterHead(c)).length >= 1, { what: 'the early frame echoed' });
  assert.match(c.text, /^HTTP\/1\.1 101 /);
  assert.equal(serverFrames(afterHead(c))[0].payload.toString(), 'early bird');

  // Many tunnels at once, each its own echo.
  const clients = await Promise.all(Array.from({ length: 20 }, () => rawConnect(px.port, { t })));
  clients.forEach((k, i) => k.write(Buffer.concat([Buffer.from(handshake(crypto.randomBytes(16).toString('base64'))), clientFrame(0x1, `client ${i}`)])));
  await Promise.all(clients.map((k) => k.waitData(() => serverFrames(afterHead(k)).length >= 1, { what: 'echo' })));
  clients.forEach((k, i) => assert.equal(serverFrames(afterHead(k))[0].payload.toString(), `client ${i}`));
  const seen = new Set(clients.map((k) => /\r\nX-Instance: (web\.\d)/i.exec(k.text)[1]));
  // (Once seen in CI: all 21 on one instance, the test taking 10 s; the terminal says why.)
  assert.equal(seen.size, 2, `upgrades are spread too\n${px.describe()}`);
  for (const k of clients) k.destroy();

  // Plain requests still work beside the tunnels.
  const r = await httpGet(px.port, '/plain');
  assert.equal(r.status, 200);
  // (An open tunnel is a request in flight: left open, it would hold phoenix's stop for the
  // whole drain_timeout.)
  c.destroy();
});

test('router: an upgrade the app refuses is an ordinary response', { timeout: 30000 }, async (t) => {
  const app = makeApp(t, 'router-echo');
  const px = await up(app);
  await px.waitReady(2);
  const c = await rawConnect(px.port, { t });
  c.write(handshake(crypto.randomBytes(16).toString('base64'), '/not-ws'));
  await c.waitData('\r\n\r\n', { what: 'a response' });
  assert.match(c.text, /^HTTP\/1\.1 400 /);
  // The instance closed its connection (Connection: close); the client's goes on as HTTP/1.1
  // (RFC 9110 7.8: no upgrade, an ordinary exchange; Connection is hop-by-hop).
  c.write('GET /after-refused-upgrade HTTP/1.1\r\nHost: x\r\n\r\n');
  await c.waitData(/\/after-refused-upgrade/, { what: 'the next request answered on the same connection' });
  assert.match(c.text, /\r\n\r\nHTTP\/1\.1 200 /);
});

test('router: when the instance dies, its tunnels close', { timeout: 30000 }, async (t) => {
  const app = makeApp(t, 'router-echo');
  const px = await up(app);
  await px.waitReady(2);
  const c = await rawConnect(px.port, { t });
  c.write(handshake(crypto.randomBytes(16).toString('base64')));
  await c.waitData('\r\n\r\n', { what: '101' });
  const instance = /\r\nX-Instance: (web\.\d)/i.exec(c.text)[1];
  const r = await phoenix(app, ['kill', instance, '--now']);
  assert.equal(r.code, 0, r.stderr);
  await c.waitClosed({ timeout: 5000 });
});

test('router: a tunnel the client left is torn down and does not hold up a drain', { timeout: 30000 }, async (t) => {
  const app = makeApp(t, 'router-echo');
  const px = await up(app);
  await px.waitReady(2);
  const c = await rawConnect(px.port, { t });
  c.write(handshake(crypto.randomBytes(16).toString('base64')));
  await c.waitData('\r\n\r\n', { what: '101' });
  const instance = /\r\nX-Instance: (web\.\d)/i.exec(c.text)[1];
  c.destroy();
  // The client's close reaches the app, which closes too: nothing is in flight on the instance
  // any more, so its planned replacement does not wait for drain_timeout (10 s).
  const start = Date.now();
  const r = await phoenix(app, ['kill', instance]);
  assert.equal(r.code, 0, r.stderr);
  await px.waitEvent((e) => e.event === 'died' && e.instance === instance && e.incarnation === 1, { timeout: 8000, what: `${instance} #1 died` });
  assert.ok(Date.now() - start < 5000, `the drain took ${Date.now() - start} ms`);
});

// A WebSocket does not end by itself: a planned replacement that waited for it would hold the
// old instance for all of drain_timeout (10 minutes here) and then cut it anyway. Once only
// tunnels are left, the instance gets its SIGTERM, the app's cue to close them (as on Heroku).
test('router: open WebSockets do not hold up a drain; the instance gets its SIGTERM at once', { timeout: 30000 }, async (t) => {
  const app = makeApp(t, 'router-echo', {
    files: { 'phoenix.toml': '[process.web]\ninstances = 1\ndrain_timeout = "10m"\nstop_timeout = "2s"\n' },
  });
  const px = await up(app);
  await px.waitReady(1);
  const c = await rawConnect(px.port, { t });
  c.write(handshake(crypto.randomBytes(16).toString('base64')));
  await c.waitData('\r\n\r\n', { what: '101' });
  assert.match(c.text, /^HTTP\/1\.1 101 /);
  const r = await phoenix(app, ['kill', 'web.1']);
  assert.equal(r.code, 0, r.stderr);
  await px.waitOutput('router-echo web.1 #1 got SIGTERM', { timeout: 15000 });
  await px.waitEvent((e) => e.event === 'died' && e.instance === 'web.1' && e.incarnation === 1, { timeout: 15000, what: 'web.1 #1 died' });
  await c.waitClosed({ timeout: 10000 }); // its tunnel ends with its instance
  // The replacement serves.
  const after = await httpGet(px.port, '/');
  assert.equal(after.status, 200);
  assert.equal(after.json.incarnation, '2');
});

test('router: a tunnel the client half-closed, whose server never closes, ends after 5 s without bytes, not at tunnel_timeout', { timeout: 40000 }, async (t) => {
  const app = makeApp(t, 'router-echo', {
    files: { 'phoenix.toml': '[router]\ntunnel_timeout = "1h"\n\n[process.web]\ninstances = 1\ndrain_timeout = "1h"\n' },
  });
  const px = await up(app);
  await px.waitReady(1);
  const c = await rawConnect(px.port, { t });
  c.write(handshake(crypto.randomBytes(16).toString('base64'), '/ws?halfopen=1'));
  await c.waitData('\r\n\r\n', { what: '101' });
  // Our FIN (we send no more); the server never answers it with its own.
  c.socket.end();
  await c.waitClosed({ timeout: 20000 });
  // And a drain does not wait for it either: the instance's planned replacement finishes.
  const r = await phoenix(app, ['kill', 'web.1']);
  assert.equal(r.code, 0, r.stderr);
  await px.waitEvent((e) => e.event === 'died' && e.instance === 'web.1' && e.incarnation === 1, { timeout: 20000, what: 'web.1 #1 died' });
});

test('router: a tunnel with no byte either way for tunnel_timeout is closed; a busy one is not', { timeout: 30000 }, async (t) => {
  const app = makeApp(t, 'router-echo', { files: { 'phoenix.toml': '[router]\ntunnel_timeout = "1s"\n' } });
  const px = await up(app);
  await px.waitReady(2);
  const open = async () => {
    const c = await rawConnect(px.port, { t });
    c.write(handshake(crypto.randomBytes(16).toString('base64')));
    await c.waitData('\r\n\r\n', { what: '101' });
    return c;
  };
  const busy = await open();
  const idle = await open();
  // For 2.5 s (over twice the timeout) the busy one sends a frame every 250 ms and gets each
  // echo; the idle one is closed meanwhile, about a second after its handshake.
  const started = Date.now();
  let sent = 0;
  while (Date.now() - started < 2500) {
    busy.write(clientFrame(0x1, `tick ${sent++}`));
    await busy.waitData(() => serverFrames(afterHead(busy)).length === sent, { what: `echo ${sent}` });
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  assert.equal(busy.closed, false, 'the busy tunnel is still open');
  assert.equal(idle.closed, true, 'the idle tunnel was closed');
  busy.write(clientFrame(0x1, 'still here'));
  await busy.waitData('still here', { what: 'an echo after the idle one closed' });
});

test('router: a tunnel whose 101 came after header_timeout still ends at tunnel_timeout', { timeout: 30000 }, async (t) => {
  // The client's header deadline fired while the instance took its time to accept: the tunnel
  // must re-arm it, or, once the instance's side has ended, the router waits on a silent client
  // that keeps its half open, forever.
  const app = makeApp(t, 'router-echo', { files: { 'phoenix.toml': '[router]\nheader_timeout = "1s"\ntunnel_timeout = "1s"\nresponse_timeout = "5s"\n' } });
  const px = await up(app);
  await px.waitReady(2);
  const fds = () => fs.readdirSync(`/proc/${px.pid}/fd`).length;
  const baseline = fds();
  const sock = net.connect({ host: '127.0.0.1', port: px.port, allowHalfOpen: true });
  t.after(() => sock.destroy());
  let text = '';
  let ended = false;
  sock.on('data', (d) => { text += d.toString('latin1'); });
  sock.on('end', () => { ended = true; });
  sock.on('error', () => {});
  sock.write(handshake(crypto.randomBytes(16).toString('base64'), '/ws?delay=1500'));
  await waitFor(() => text.includes('\r\n\r\n'), { timeout: 10000, what: 'the 101' });
  assert.match(text, /^HTTP\/1\.1 101 /);
  await waitFor(() => ended, { timeout: 6000, what: 'the router ending the idle tunnel' });
  // And the router let go of the client's connection too, though the client never closed it.
  await waitFor(() => fds() <= baseline, { timeout: 6000, what: `phoenix's descriptors back to ${baseline}` });
});

// An idle tunnel holds no buffers: each direction waits for readability with none, and the
// heads' buffers go when the tunnel starts (two 16 KiB pipe buffers, a 16 KiB read buffer and
// an instance connection's 16 KiB buffer each stayed for the tunnel's life).
test('router: idle WebSockets hold little memory', { timeout: 60000 }, async (t) => {
  const app = makeApp(t, 'router-echo', { files: { 'phoenix.toml': '[router]\nthreads = 1\naccess_log = false\n\n[process.web]\ninstances = 1\n' } });
  const px = await up(app);
  await px.waitReady(1);
  const open = async (count) => {
    const clients = await Promise.all(Array.from({ length: count }, () => rawConnect(px.port, { t })));
    for (const c of clients) c.write(handshake(crypto.randomBytes(16).toString('base64')));
    await Promise.all(clients.map((c) => c.waitData('\r\n\r\n', { what: '101' })));
    return clients;
  };
  await open(100);  // the loop's own pools, made once
  const before = vmRssKb(px.pid);
  const clients = [];
  for (let i = 0; i < 10; i++) clients.push(...await open(100));
  const each = (vmRssKb(px.pid) - before) / clients.length;
  t.diagnostic(`RSS of an idle WebSocket: ${each.toFixed(1)} KiB`);
  assert.ok(each < 20, `an idle WebSocket costs ${each.toFixed(1)} KiB of RSS`);
  // They still echo.
  const c = clients[clients.length - 1];
  const mark = c.data.length;
  c.write(clientFrame(0x1, Buffer.from('still here')));
  await c.waitData((text, data) => data.subarray(mark).includes('still here'), { what: 'the echo' });
});
