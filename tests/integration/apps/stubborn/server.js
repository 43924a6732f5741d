'use strict';
// stubborn: serves, and ignores SIGTERM, so only SIGKILL ends it.
const http = require('http');
http.createServer((req, res) => res.end('stubborn\n')).listen(Number(process.env.PORT), '127.0.0.1', () => {
  console.log(`stubborn ${process.env.PHOENIX_INSTANCE} listening`);
});
process.on('SIGTERM', () => console.log(`stubborn ${process.env.PHOENIX_INSTANCE} ignores SIGTERM`));
