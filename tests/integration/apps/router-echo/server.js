'use strict';
// router-echo: a backend for the router's tests. Every answer says which instance made it.
//   any path          JSON of what arrived: method, url, httpVersion, headers, rawHeaders, body
//   /slow?ms=N        answers after N ms (prints "slow start" and "slow done", or "slow
//                     abandoned" when its connection closes first)
//   /upload           counts the request body's bytes without keeping them: {bytes}
//   /download?bytes=N N bytes of 'x', streamed with backpressure (&chunked=1: no Content-Length)
//   /chunked          the request body sent back in several chunks (no Content-Length)
//   /hints            a 103 Early Hints, then the answer
//   /held?id=X        the head at once (an event stream), the body only when /release?id=X comes
//                     (&length=1: with a Content-Length)
//   /until-close      a body delimited by the end of the connection (no Content-Length, not chunked)
//   /ws               a minimal WebSocket echo (text and binary frames, close, ping);
//                     ?halfopen=1: the server never closes its half after the client's FIN
//   /crash            exits (status 3) without answering
//   /hang-me          answers, then this instance answers nothing more (hung, still accepting)
//   /too-large        413 at once, the body unread (?reset=1: then the connection is dropped)
// LOG_REQUESTS=1 prints "seen METHOD URL" for every request head that arrives (smuggling tests);
// LOG_CONNECTIONS=1 prints "connection ended by peer" when the router closes a connection.
// KEEP_ALIVE_MS=N: close an idle keep-alive connection after N ms (Node's default here: 5000).
const http = require('http');
const crypto = require('crypto');

const instance = process.env.PHOENIX_INSTANCE;
const incarnation = process.env.PHOENIX_INCARNATION;
const logRequests = process.env.LOG_REQUESTS === '1';

function json(res, status, value) {
  const body = JSON.stringify({ instance, incarnation, ...value });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function readBody(req, limit, done) {
  const chunks = [];
  let size = 0;
  req.on('data', (c) => {
    size += c.length;
    if (size <= limit) chunks.push(c);
  });
  req.on('end', () => done(Buffer.concat(chunks), size));
}

function download(res, total, chunked) {
  const block = Buffer.alloc(64 * 1024, 'x');
  const headers = { 'content-type': 'application/octet-stream', 'x-instance': instance };
  if (!chunked) headers['content-length'] = String(total);
  res.writeHead(200, headers);
  let sent = 0;
  const pump = () => {
    while (sent < total) {
      const n = Math.min(block.length, total - sent);
      sent += n;
      if (!res.write(n === block.length ? block : block.subarray(0, n))) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  pump();
}

// Heads up to 64 KiB (Node's default is 16 KiB), so that the router's own limit is what is tested.
let hung = false;  // /hang-me: from then on this instance answers nothing (a deadlock)
const held = new Map();  // /held responses waiting for their /release, by id
const server = http.createServer({ maxHeaderSize: 64 * 1024 }, (req, res) => {
  if (logRequests) console.log(`seen ${req.method} ${req.url}`);
  if (hung) return;
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/hang-me') {
    hung = true;
    json(res, 200, { instance, hung: true });
    return;
  }
  if (url.pathname === '/slow') {
    const ms = Number(url.searchParams.get('ms') || 1000);
    console.log(`slow start ${req.headers['x-request-id']}`);
    const timer = setTimeout(() => {
      console.log(`slow done ${req.headers['x-request-id']}`);
      json(res, 200, { slept: ms });
    }, ms);
    res.on('close', () => {
      clearTimeout(timer);
      // Closed before the answer: the client (or the router for it) gave up.
      if (!res.writableFinished) console.log(`slow abandoned ${req.headers['x-request-id']}`);
    });
    return;
  }
  if (url.pathname === '/too-large') {
    // Refuses the body at once, unread (an upload limit); with ?reset=1 it then drops the
    // connection with the body still coming, so the kernel resets it.
    res.writeHead(413, { 'content-type': 'text/plain', connection: 'close' });
    res.end('too large\n', () => { if (url.searchParams.get('reset') === '1') req.socket.destroy(); });
    return;
  }
  if (url.pathname === '/crash') {
    // A request that kills the instance serving it, before any answer.
    console.log(`crash on ${req.headers['x-request-id']}`);
    process.exit(3);
  }
  if (url.pathname === '/pipe') {
    // Answers as it reads: each piece of the body goes back at once (a transcoder, a streaming
    // API). Its answer and its body flow at the same time, both ways' buffers filling.
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-instance': instance });
    req.pipe(res);
    return;
  }
  if (url.pathname === '/flush-then-count') {
    // The head at once (flushHeaders), the answer once the whole body came, however slowly.
    res.writeHead(200, { 'content-type': 'text/plain', 'x-instance': instance });
    res.flushHeaders();
    let bytes = 0;
    req.on('data', (c) => { bytes += c.length; });
    req.on('end', () => res.end(`${bytes}\n`));
    return;
  }
  if (url.pathname === '/upload') {
    let bytes = 0;
    req.on('data', (c) => { bytes += c.length; });
    req.on('end', () => json(res, 200, { bytes }));
    return;
  }
  if (url.pathname === '/download') {
    req.resume();
    download(res, Number(url.searchParams.get('bytes') || 0), url.searchParams.get('chunked') === '1');
    return;
  }
  if (url.pathname === '/hints') {
    // A 103 Early Hints before the answer.
    res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
    setTimeout(() => json(res, 200, { hinted: true }), 50);
    return;
  }
  if (url.pathname === '/held') {
    const body = 'data: released\n\n';
    const headers = { 'content-type': 'text/event-stream', 'x-instance': instance };
    if (url.searchParams.get('length')) headers['content-length'] = String(body.length);
    res.writeHead(200, headers);
    res.flushHeaders();
    held.set(url.searchParams.get('id'), () => res.end(body));
    return;
  }
  if (url.pathname === '/release') {
    const release = held.get(url.searchParams.get('id'));
    held.delete(url.searchParams.get('id'));
    if (release) release();
    json(res, release ? 200 : 404, {});
    return;
  }
  if (url.pathname === '/until-close') {
    // An answer with neither Content-Length nor chunked: its body ends when the connection does.
    req.socket.write(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Instance: ${instance}\r\n\r\nbody until close`);
    req.socket.end();
    return;
  }
  if (url.pathname === '/chunked') {
    readBody(req, 1 << 20, (body) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'x-instance': instance });
      // Three writes, no Content-Length: Node sends them as chunks.
      const third = Math.ceil(body.length / 3);
      res.write(`[${instance}]`);
      res.write(body.subarray(0, third));
      res.write(body.subarray(third));
      res.end('[end]');
    });
    return;
  }
  readBody(req, 1 << 20, (body, size) => {
    json(res, 200, {
      method: req.method,
      url: req.url,
      httpVersion: req.httpVersion,
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      body: body.toString('utf8'),
      bodyBytes: size,
    });
  });
});

// ---- WebSocket (RFC 6455), just enough to echo frames.
function frame(opcode, payload) {
  const len = payload.length;
  let head;
  if (len < 126) {
    head = Buffer.from([0x80 | opcode, len]);
  } else if (len < 65536) {
    head = Buffer.alloc(4);
    head[0] = 0x80 | opcode; head[1] = 126; head.writeUInt16BE(len, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = 0x80 | opcode; head[1] = 127; head.writeBigUInt64BE(BigInt(len), 2);
  }
  return Buffer.concat([head, payload]);
}

server.on('upgrade', (req, socket, head) => {
  if (logRequests) console.log(`seen ${req.method} ${req.url} (upgrade)`);
  const key = req.headers['sec-websocket-key'];
  if (new URL(req.url, 'http://x').pathname !== '/ws' || !key || (req.headers.upgrade || '').toLowerCase() !== 'websocket') {
    socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  // /ws?delay=N: the 101 comes N ms late (an app slow to accept an upgrade).
  const delay = Number(new URL(req.url, 'http://x').searchParams.get('delay') || 0);
  if (delay > 0) {
    socket.pause();
    setTimeout(() => { socket.resume(); accept101(req, socket, head); }, delay);
    return;
  }
  accept101(req, socket, head);
});

function accept101(req, socket, head) {
  const key = req.headers['sec-websocket-key'];
  const accept = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    `Sec-WebSocket-Accept: ${accept}\r\nX-Instance: ${instance}\r\n\r\n`);
  let buf = head && head.length ? Buffer.from(head) : Buffer.alloc(0);
  const consume = () => {
    for (;;) {
      if (buf.length < 2) return;
      const opcode = buf[0] & 0x0f;
      const masked = (buf[1] & 0x80) !== 0;
      let len = buf[1] & 0x7f;
      let off = 2;
      if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
      else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); off = 10; }
      const maskOff = off;
      if (masked) off += 4;
      if (buf.length < off + len) return;
      const payload = Buffer.from(buf.subarray(off, off + len));
      if (masked) for (let i = 0; i < len; i++) payload[i] ^= buf[maskOff + (i % 4)];
      buf = buf.subarray(off + len);
      if (opcode === 0x8) { socket.end(frame(0x8, payload)); return; }
      if (opcode === 0x9) { socket.write(frame(0xa, payload)); continue; }
      if (opcode === 0x1 || opcode === 0x2) socket.write(frame(opcode, payload));
    }
  };
  socket.on('data', (d) => { buf = Buffer.concat([buf, d]); consume(); });
  socket.on('error', () => {});
  // The client went away: close our side too (the server's sockets allow half-open ones);
  // /ws?halfopen=1 never does, as a server that ignores the FIN.
  const halfOpen = new URL(req.url, 'http://x').searchParams.get('halfopen') === '1';
  socket.on('end', () => { if (!halfOpen) socket.end(); });
  consume();
}

// LOG_CONNECTIONS=1 prints "connection ended by peer" when the router closes one it held, and
// at SIGTERM how many the router still held open.
const routerHeld = new Set();
if (process.env.LOG_CONNECTIONS === '1') {
  server.on('connection', (socket) => {
    routerHeld.add(socket);
    socket.on('end', () => {
      routerHeld.delete(socket);
      console.log(`connection ended by peer (#${incarnation})`);
    });
    socket.on('close', () => routerHeld.delete(socket));
  });
}

// `Expect: 100-continue` decided by the app, before any body: /deny refuses (an auth or quota
// check), the rest continue.
server.on('checkContinue', (req, res) => {
  if (req.url.startsWith('/deny')) {
    res.writeHead(401, { 'content-type': 'text/plain', 'x-instance': instance });
    res.end('no upload for you\n');
    return;
  }
  if (req.url.startsWith('/silent')) return;  // neither 100 nor a refusal: a hung check
  res.writeContinue();
  server.emit('request', req, res);
});

server.keepAliveTimeout = Number(process.env.KEEP_ALIVE_MS || 5000);
// LISTEN_HOST=::1: an app bound to IPv6 loopback only (as "localhost" can resolve).
server.listen(Number(process.env.PORT), process.env.LISTEN_HOST || '127.0.0.1', () => {
  console.log(`router-echo ${instance} #${incarnation} listening on ${process.env.PORT}`);
});
process.on('SIGTERM', () => {
  console.log(`router-echo ${instance} #${incarnation} got SIGTERM`);
  // Graceful: requests in flight finish, idle keep-alive connections close. After this turn's
  // other events, so that a FIN the kernel had before the signal has been read.
  setImmediate(() => {
    if (process.env.LOG_CONNECTIONS === '1') console.log(`held open at SIGTERM: ${routerHeld.size} (#${incarnation})`);
    server.close(() => process.exit(0));
    server.closeIdleConnections();
  });
  setTimeout(() => process.exit(0), 1500).unref();
});
