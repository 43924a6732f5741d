// The smallest useful web app: answers every request on $PORT.
const http = require('http');
const port = Number(process.env.PORT || 3000);
http.createServer((req, res) => res.end('hello\n')).listen(port, '127.0.0.1');
