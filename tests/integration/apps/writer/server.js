'use strict';
// writer: at birth, writes the kinds of server-local state phoenix must reveal, then answers
// GET / with what it saw and what each write did ("ok" or the error code, e.g. EROFS).
//   written.txt        created in the app root (11 bytes: "hello world")
//   existing.txt       modified (shipped with the app)
//   doomed.txt         deleted (shipped with the app)
//   tmp/scratch.txt    created under a `writable` folder: scratch, not lost state
//   /tmp/<marker>.txt  private /tmp: must not appear on the host
//   /var/tmp/<marker>.txt, /dev/shm/<marker>.txt   private too
const fs = require('fs');
const http = require('http');

const marker = process.env.PHX_TEST_MARKER || 'nomarker';
const saw = {
  written: fs.existsSync('written.txt'),
  existing: fs.readFileSync('existing.txt', 'utf8'),
  doomed: fs.existsSync('doomed.txt'),
  scratch: fs.existsSync('tmp/scratch.txt'),
  privateTmp: fs.existsSync(`/tmp/${marker}.txt`),
  privateVarTmp: fs.existsSync(`/var/tmp/${marker}.txt`),
  privateShm: fs.existsSync(`/dev/shm/${marker}.txt`),
};

function attempt(fn) {
  try { fn(); return 'ok'; } catch (err) { return err.code || err.message; }
}
const did = {
  written: attempt(() => fs.writeFileSync('written.txt', 'hello world')),
  existing: attempt(() => fs.appendFileSync('existing.txt', 'changed\n')),
  doomed: attempt(() => fs.unlinkSync('doomed.txt')),
  scratch: attempt(() => fs.writeFileSync('tmp/scratch.txt', 'scratch!')),
  privateTmp: attempt(() => fs.writeFileSync(`/tmp/${marker}.txt`, 'private')),
  privateVarTmp: attempt(() => fs.writeFileSync(`/var/tmp/${marker}.txt`, 'private')),
  privateShm: attempt(() => fs.writeFileSync(`/dev/shm/${marker}.txt`, 'private')),
};

http.createServer((req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({
    instance: process.env.PHOENIX_INSTANCE,
    incarnation: process.env.PHOENIX_INCARNATION,
    pid: process.pid,
    saw,
    did,
  }));
}).listen(Number(process.env.PORT), '127.0.0.1', () => {
  console.log(`writer ${process.env.PHOENIX_INSTANCE} #${process.env.PHOENIX_INCARNATION}: ${JSON.stringify(did)}`);
});
process.on('SIGTERM', () => process.exit(0));
