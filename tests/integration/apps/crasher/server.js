'use strict';
// crasher: becomes ready, then exits with status 3 after CRASH_AFTER_MS (default 300 ms).
const http = require('http');
const after = Number(process.env.CRASH_AFTER_MS || 300);
http.createServer((req, res) => res.end('alive\n')).listen(Number(process.env.PORT), '127.0.0.1', () => {
  console.log(`crasher ${process.env.PHOENIX_INSTANCE} #${process.env.PHOENIX_INCARNATION} up; crashing in ${after} ms`);
  setTimeout(() => {
    console.error('crasher: exiting with status 3');
    process.exit(3);
  }, after);
});
