'use strict';
// A probe beside wrk that also sees hung requests: every INTERVAL ms, a GET / on a fresh
// connection (no agent, "Connection: close") with a TIMEOUT ms deadline for the whole
// response. A request fails on a socket error, a status other than 2xx, a body cut short, or
// the deadline. Prints one JSON object when every request sent has settled:
//   { sent, ok, failed, kinds: {timeout, error:..., status:...}, p50_ms, p99_ms, max_ms,
//     late_ticks, failures: [{t_ms, kind}] (first 100), epoch_start_ms }
// usage: node router-probe.js --port P [--interval-ms 10] [--timeout-ms 2000] --duration-s S
const http = require('http');
const { performance } = require('perf_hooks');

const o = {};
for (let i = 2; i < process.argv.length; i += 2) o[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const port = Number(o.port), interval = Number(o['interval-ms'] || 10);
const timeoutMs = Number(o['timeout-ms'] || 2000), durationMs = 1000 * Number(o['duration-s'] || 30);

const t0 = performance.now();
const epochStart = performance.timeOrigin + t0;
let sent = 0, ok = 0, pending = 0, lateTicks = 0;
const kinds = {}, failures = [], lat = [];

function fail(t, kind) {
  kinds[kind] = (kinds[kind] || 0) + 1;
  if (failures.length < 100) failures.push({ t_ms: Math.round(t - t0), kind });
}

function probe() {
  const t = performance.now();
  sent++;
  pending++;
  let settled = false;
  const settle = (kind) => {
    if (settled) return;
    settled = true;
    pending--;
    clearTimeout(timer);
    if (kind) fail(t, kind); else { ok++; lat.push(performance.now() - t); }
    if (stopped && pending === 0) finish();
  };
  const req = http.get({ host: '127.0.0.1', port, path: '/probe', agent: false }, (res) => {
    const good = res.statusCode >= 200 && res.statusCode < 300;
    res.on('data', () => {});
    res.on('end', () => settle(good ? null : `status ${res.statusCode}`));
    res.on('aborted', () => settle('body cut short'));
    res.on('error', (e) => settle(`error ${e.code || e.message}`));
  });
  req.on('error', (e) => settle(`error ${e.code || e.message}`));
  const timer = setTimeout(() => { settle('timeout'); req.destroy(); }, timeoutMs);
}

let stopped = false;
let next = t0;
function tick() {
  const now = performance.now();
  if (now - t0 >= durationMs) {
    stopped = true;
    if (pending === 0) finish();
    return;
  }
  if (now - next > interval) lateTicks++;  // the machine is busy; the schedule slips
  probe();
  next = Math.max(next + interval, now);
  setTimeout(tick, Math.max(0, next - performance.now()));
}

function finish() {
  const s = [...lat].sort((a, b) => a - b);
  const q = (p) => (s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] : NaN);
  const failed = sent - ok;
  process.stdout.write(JSON.stringify({
    sent, ok, failed, kinds, p50_ms: q(50), p99_ms: q(99), max_ms: s.length ? s[s.length - 1] : NaN,
    late_ticks: lateTicks, failures, epoch_start_ms: epochStart,
  }) + '\n');
  process.exit(0);
}

tick();
