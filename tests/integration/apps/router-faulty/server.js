// A backend that answers each path with raw bytes, most of them faulty on purpose, over one
// keep-alive connection: the router must refuse what it cannot frame (502) and never let bytes
// past a response's end answer the next request. Every well-formed answer's body names the
// path it answers, so a desynchronised connection shows.
const net = require('net');

const ok = (path) => `HTTP/1.1 200 OK\r\nContent-Length: ${path.length}\r\n\r\n${path}`;
const RAW = {
  '/cl-and-te': 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n',
  '/two-lengths': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!',
  '/bare-lf': 'HTTP/1.1 200 OK\nContent-Length: 2\n\nok',
  '/bad-status': 'HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok',
  '/not-http': 'hello there\r\n\r\n',
  '/nul': 'HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 2\r\n\r\nok',
  '/bad-chunk': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n',
  '/unasked-101': 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: foo\r\nConnection: upgrade\r\n\r\n',
  '/huge-head': `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(70000)}\r\nContent-Length: 2\r\n\r\nok`,
  // No reason phrase, nor the space before it: accepted, as nginx and HAProxy do.
  '/no-reason': 'HTTP/1.1 200\r\nContent-Length: 10\r\n\r\n/no-reason',
  // Framing fields that readers may take differently: sent on in one form only.
  '/te-empty-then-chunked': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: \r\nTransfer-Encoding: chunked\r\n\r\n16\r\n/te-empty-then-chunked\r\n0\r\n\r\n',
  // Transfer-Encoding overrides Content-Length, and without a final chunked the body ends at the
  // close (RFC 9112 6.3): read by the length, it was cut and looked whole. A 502, as HAProxy.
  '/te-gzip-and-cl': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 5\r\n\r\nhello',
  // Chunked twice (RFC 9112 6.1 forbids it): the parser reads to the close, the head says chunked.
  '/chunked-twice': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  // Status codes are three digits from 100 (RFC 9112 4, RFC 9110 15): "000" went on as "0", a
  // 1xx, and its body was read as the next head.
  '/status-000': 'HTTP/1.1 000 Zero\r\nContent-Length: 5\r\n\r\nhello',
  // A 1xx has no content (RFC 9110 8.6): its "body" was read as the next head.
  '/1xx-with-length': 'HTTP/1.1 199 Odd\r\nContent-Length: 5\r\n\r\nhello',
  '/cl-twice': 'HTTP/1.1 200 OK\r\nContent-Length: 9\r\nContent-Length: 9\r\n\r\n/cl-twice',
  // A framing field in the trailer of a chunked body (RFC 9110 6.5.1 forbids it there): the
  // body is whole; the trailer is dropped as any other.
  '/cl-in-trailer': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\ne\r\n/cl-in-trailer\r\n0\r\nContent-Length: 5\r\n\r\n',
  // A chunk extension that never ends (the connection stays open): the router's buffer must not
  // grow with it.
  '/endless-chunk-ext': `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=${'b'.repeat(1 << 20)}`,
  // Well framed, but followed by bytes that answer nothing.
  '/then-a-second-response': `${ok('/then-a-second-response')}${ok('/smuggled')}`,
  '/no-content-with-body': 'HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n/smuggled',
};
// Bytes sent a little after a well-framed answer (a separate write, as a server that writes
// a body for a HEAD request after its head does).
const LATE = { '/then-late-bytes': ok('/smuggled') };
// A whole second response a few milliseconds after the answer (a handler that answers twice
// through the raw socket): it must never reach another client.
const STRAY_MS = 2;

net.createServer((s) => {
  let buf = '';
  let closing = false;
  s.on('data', (d) => {
    if (closing) return;  // said Connection: close: what comes after is not read
    buf += d.toString('latin1');
    for (let i; (i = buf.indexOf('\r\n\r\n')) >= 0;) {
      const path = buf.split(' ')[1];
      buf = buf.slice(i + 4);
      if (path === '/stall-413') {
        // Refuses the body at once and stops reading it, without closing (a body parser with a
        // limit that pauses its stream): the router's writes of the body stall.
        s.write('HTTP/1.1 413 Payload Too Large\r\nContent-Length: 10\r\n\r\ntoo large\n');
        s.pause();
        closing = true;
        return;
      }
      if (path === '/cut-short') {
        // A head, part of the body, then the connection ends: the client sees a cut answer.
        s.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly a part');
        closing = true;
        return;
      }
      if (path === '/many-1xx') {
        // 1xx heads without end (here 40, then the answer): each is kept until the request
        // ends, so the router takes a bounded number and answers 502.
        s.write('HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n'.repeat(40) + ok(path));
        continue;
      }
      if (path === '/fat-1xx') {
        // Few 1xx heads, but fat ones (3 of 30 KB): their bytes together are held to one head's
        // limit (64 KiB), so the third is a 502.
        const pad = 'x'.repeat(30 * 1024);
        s.write(`HTTP/1.1 103 Early Hints\r\nX-Pad: ${pad}\r\n\r\n`.repeat(3) + ok(path));
        continue;
      }
      if (path === '/big-until-close') {
        // 3 MB whose end is the connection's (no length, not chunked).
        s.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n');
        s.end(Buffer.alloc(3 * 1024 * 1024, 'z'));
        closing = true;
        return;
      }
      if (path === '/te-gzip-until-close') {
        // A transfer coding other than chunked, last: the body ends with the connection.
        s.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Encoding: br\r\n\r\nzipped bytes');
        closing = true;
        return;
      }
      if (path === '/until-reset') {
        // A body without a length, cut by a reset: the client must be able to tell.
        s.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n' + 'r'.repeat(3000), () => {
          setTimeout(() => s.resetAndDestroy(), 100);
        });
        closing = true;
        return;
      }
      if (path === '/close-soon') {
        // Announces the close, and closes a little later, as a server finishing a write does.
        s.write('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 11\r\n\r\n/close-soon');
        closing = true;
        setTimeout(() => s.end(), 300);
        return;
      }
      if (path === '/answers-twice') {
        s.write(ok(path));
        setTimeout(() => s.write(ok('/stray')), STRAY_MS);
        continue;
      }
      s.write(RAW[path] ?? ok(path));
      if (LATE[path]) setTimeout(() => s.write(LATE[path], () => console.log(`late bytes sent after ${path}`)), 50);
    }
  });
  s.on('error', () => {});
}).listen(process.env.PORT, '127.0.0.1', () => console.log(`raw backend on ${process.env.PORT}`));
