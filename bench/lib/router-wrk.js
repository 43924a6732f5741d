'use strict';
// Parses wrk's text output (with --latency) from stdin; prints one JSON object:
//   { rps, requests, seconds, p50_ms, p75_ms, p90_ms, p99_ms, max_ms, non2xx,
//     connect, read, write, timeout, errors, ok }   (errors = socket errors + non-2xx/3xx)
// A wrk that did not finish (killed by its time bound, crashed) gives ok: false.
const text = require('fs').readFileSync(0, 'utf8');

function ms(v, unit) {
  const x = Number(v);
  return unit === 'us' ? x / 1000 : unit === 'ms' ? x : unit === 's' ? x * 1000 : unit === 'm' ? x * 60000 : NaN;
}
const num = (re) => { const m = re.exec(text); return m ? Number(m[1]) : 0; };
const lat = (p) => {
  const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(text);
  return m ? ms(m[1], m[2]) : NaN;
};

const r = {};
const done = /(\d+) requests in ([\d.]+)(ms|s|m),/.exec(text);
r.ok = !!done && /Requests\/sec:/.test(text);
r.requests = done ? Number(done[1]) : 0;
r.seconds = done ? ms(done[2], done[3]) / 1000 : NaN;
r.rps = num(/Requests\/sec:\s+([\d.]+)/);
r.p50_ms = lat(50);
r.p75_ms = lat(75);
r.p90_ms = lat(90);
r.p99_ms = lat(99);
const max = /^\s+Latency\s+[\d.]+\w+\s+[\d.]+\w+\s+([\d.]+)(us|ms|s|m)/m.exec(text);
r.max_ms = max ? ms(max[1], max[2]) : NaN;
const se = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
[r.connect, r.read, r.write, r.timeout] = se ? se.slice(1).map(Number) : [0, 0, 0, 0];
r.non2xx = num(/Non-2xx or 3xx responses:\s+(\d+)/);
r.errors = r.connect + r.read + r.write + r.timeout + r.non2xx;
process.stdout.write(JSON.stringify(r) + '\n');
