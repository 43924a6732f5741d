'use strict';
// HAProxy's runtime API over its stats socket, for router-rotation.sh's drained restarts.
//   node router-hactl.js SOCK cmd 'set server be/a state drain'   prints the answer
//   node router-hactl.js SOCK wait-idle be a TIMEOUT_MS            until the server has no
//       current session (show stat: scur 0) or the timeout; prints the ms waited
//   node router-hactl.js SOCK wait-up be a TIMEOUT_MS              until its status is UP
const net = require('net');
const [sock, what, ...rest] = process.argv.slice(2);

function send(cmd) {
  return new Promise((resolve, reject) => {
    const c = net.connect(sock);
    let out = '';
    c.on('data', (d) => { out += d; });
    c.on('end', () => resolve(out));
    c.on('error', reject);
    c.end(cmd + '\n');
  });
}

(async () => {
  if (what === 'cmd') {
    process.stdout.write(await send(rest.join(' ')));
  } else if (what === 'wait-idle') {
    const [be, srv, timeoutMs] = rest;
    const t0 = Date.now();
    for (;;) {
      const csv = await send('show stat');
      const head = csv.split('\n')[0].replace(/^# /, '').split(',');
      const scur = head.indexOf('scur');
      const row = csv.split('\n').map((l) => l.split(',')).find((f) => f[0] === be && f[1] === srv);
      if (!row || Number(row[scur]) === 0 || Date.now() - t0 > Number(timeoutMs)) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    console.log(Date.now() - t0);
  } else if (what === 'wait-up') {
    const [be, srv, timeoutMs] = rest;
    const t0 = Date.now();
    for (;;) {
      const csv = await send('show stat');
      const head = csv.split('\n')[0].replace(/^# /, '').split(',');
      const status = head.indexOf('status');
      const row = csv.split('\n').map((l) => l.split(',')).find((f) => f[0] === be && f[1] === srv);
      if (!row || /^UP/.test(row[status]) || Date.now() - t0 > Number(timeoutMs)) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    console.log(Date.now() - t0);
  } else {
    console.error('usage: router-hactl.js SOCK cmd ... | wait-idle|wait-up BACKEND SERVER TIMEOUT_MS');
    process.exit(2);
  }
})().catch((e) => { console.error(`router-hactl: ${e.message}`); process.exit(1); });
