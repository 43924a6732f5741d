// The small Node app of the router benches (router-rotation.sh, router-drill.sh): answers
// every request on $PORT with "ok" over keep-alive. Like most apps, it does nothing on
// SIGTERM/SIGINT (the default: exit at once, dropping what is in flight); with GRACEFUL=1 it
// stops accepting, closes idle keep-alive connections and exits once in-flight requests are
// done (at most 5 s), as a careful deploy behind PM2 or HAProxy would.
const http = require('http');
const port = Number(process.env.PORT || 3000);
const server = http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '3' });
  res.end('ok\n');
});
server.listen(port, '127.0.0.1', () => { if (process.send) process.send('ready'); });
if (process.env.GRACEFUL === '1') {
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeIdleConnections();
    setTimeout(() => process.exit(0), 5000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
