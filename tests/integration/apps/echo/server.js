'use strict';
// echo: answers every request with what this instance knows about itself, as JSON.
// GET /say?text=T prints T on stdout (to test logs); /spam?lines=N&size=S prints N lines of S
// bytes. A worker (worker.js) prints its env instead.
const http = require('http');

const instance = process.env.PHOENIX_INSTANCE;
function describe() {
  return {
    instance,
    incarnation: process.env.PHOENIX_INCARNATION,
    dyno: process.env.DYNO,
    port: process.env.PORT,
    fromDotenv: process.env.FROM_DOTENV,
    fromEnvFile: process.env.FROM_ENV_FILE,
    pid: process.pid,
    ppid: process.ppid,
    cwd: process.cwd(),
  };
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/say') console.log(`said: ${url.searchParams.get('text')}`);
  if (url.pathname === '/spam') {
    const line = `${'s'.repeat(Number(url.searchParams.get('size')))}\n`;
    process.stdout.write(line.repeat(Number(url.searchParams.get('lines'))));
  }
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(describe()));
});
server.listen(Number(process.env.PORT), '127.0.0.1', () => {
  console.log(`echo ${instance} listening on ${process.env.PORT}`);
});
process.on('SIGTERM', () => {
  console.log(`echo ${instance} got SIGTERM`);
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
