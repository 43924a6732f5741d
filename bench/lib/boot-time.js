'use strict';
// App boot time outside phoenix: spawn `node server.js` with $PORT and time until a TCP
// connect to the port succeeds (polled every 1 ms). Prints a JSON array of ms, one per run.
// usage: node boot-time.js APP_DIR RUNS [WARMUP]     (or require() it: bootOnce(appDir))
const { spawn } = require('child_process');
const net = require('net');

const PER_RUN_TIMEOUT_MS = 10000;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

function tryConnect(port) {
  return new Promise((resolve) => {
    const c = net.connect({ port, host: '127.0.0.1' });
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => { c.destroy(); resolve(false); });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function bootOnce(appDir) {
  const port = await freePort();
  const t0 = process.hrtime.bigint();
  const child = spawn(process.execPath, ['server.js'], {
    cwd: appDir, env: { ...process.env, PORT: String(port) }, stdio: 'ignore',
  });
  const exited = new Promise((r) => child.once('exit', r));
  let ms = NaN;
  try {
    for (;;) {
      if (await tryConnect(port)) { ms = Number(process.hrtime.bigint() - t0) / 1e6; break; }
      if (Number(process.hrtime.bigint() - t0) / 1e6 > PER_RUN_TIMEOUT_MS) throw new Error('app did not accept within 10 s');
      if (child.exitCode !== null) throw new Error(`app exited with ${child.exitCode}`);
      await sleep(1);
    }
  } finally {
    child.kill('SIGKILL');
    await Promise.race([exited, sleep(5000)]);
  }
  return ms;
}

module.exports = { bootOnce };

if (require.main === module) {
  const [appDir, runsArg, warmArg] = process.argv.slice(2);
  const runs = Number(runsArg || 20), warmup = Number(warmArg || 1);
  (async () => {
    for (let i = 0; i < warmup; i++) await bootOnce(appDir);
    const out = [];
    for (let i = 0; i < runs; i++) { out.push(await bootOnce(appDir)); await sleep(50); }
    process.stdout.write(JSON.stringify(out) + '\n');
  })().catch((e) => { console.error(`boot-time: ${e.message}`); process.exit(1); });
}
