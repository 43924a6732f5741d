'use strict';
// Helpers that drive a running `phoenix up` for the bench scripts.
//
//   node phx.js wait-ready --bin B --app DIR --type web --count N [--timeout-s 60]
//       polls `phoenix ps --json` until exactly N instances of the type are ready.
//   node phx.js rebirths --bin B --app DIR --events F --instance web.1 --count 20
//                        [--log FILE] [--pause-ms 300] [--timeout-s 15]
//       runs `phoenix kill INSTANCE --now` COUNT times, each time waiting for the next
//       incarnation's "ready" event; prints one JSON object per rebirth (a JSON array).
//       With --log (phoenix up's stdout), also picks up a line the command prints:
//       "first-instruction INCARNATION EPOCH_SECONDS.MICROS" (bash's $EPOCHREALTIME).
//       With --probe-port 1, also connects to the new incarnation's port (from its "born"
//       event) every 1 ms, to see when the app itself accepts, apart from phoenix's probe.
//       With --interleave-boot APP_DIR, also times one boot of `node server.js` outside
//       phoenix before each kill (boot-time.js), so both see the same machine load.
const fs = require('fs');
const net = require('net');
const { bootOnce } = require('./boot-time.js');
const { execFileSync } = require('child_process');
const { performance } = require('perf_hooks');

function args(argv) {
  const o = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i].startsWith('--')) o[argv[i].slice(2)] = argv[++i];
    else o._.push(argv[i]);
  }
  return o;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const epochMs = () => performance.timeOrigin + performance.now();  // sub-ms wall clock

function ps(bin, app) {
  const out = execFileSync(bin, ['ps', '--json'], { cwd: app, timeout: 10000, encoding: 'utf8' });
  return JSON.parse(out);
}

async function waitReady(o) {
  const want = Number(o.count), deadline = Date.now() + 1000 * Number(o['timeout-s'] || 60);
  let last = [];
  while (Date.now() < deadline) {
    try {
      last = ps(o.bin, o.app).filter((i) => i.type === o.type);
      if (last.length === want && last.every((i) => i.state === 'ready')) return;
    } catch (e) { /* control socket not up yet */ }
    await sleep(100);
  }
  const ready = last.filter((i) => i.state === 'ready').length;
  throw new Error(`timed out: ${ready}/${want} ${o.type} instances ready`);
}

// Follows an append-only JSON-lines (or text) file from a byte offset.
class Tail {
  constructor(file) { this.file = file; this.fd = fs.openSync(file, 'r'); this.off = 0; this.buf = ''; }
  skipToEnd() { this.off = fs.fstatSync(this.fd).size; this.buf = ''; }
  lines() {
    const out = [];
    const chunk = Buffer.alloc(65536);
    for (;;) {
      const n = fs.readSync(this.fd, chunk, 0, chunk.length, this.off);
      if (n <= 0) break;
      this.off += n;
      this.buf += chunk.toString('utf8', 0, n);
    }
    let nl;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      out.push(this.buf.slice(0, nl));
      this.buf = this.buf.slice(nl + 1);
    }
    return out;
  }
  close() { fs.closeSync(this.fd); }
}

// Resolves on the next change of the file (inotify), or after `ms` at most.
function changeOrTimeout(watcher, ms) {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() { clearTimeout(t); watcher.removeListener('change', done); resolve(); }
    watcher.once('change', done);
  });
}

function tryConnect(port) {
  return new Promise((resolve) => {
    const c = net.connect({ port, host: '127.0.0.1' });
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => { c.destroy(); resolve(false); });
  });
}

function lastReadyIncarnation(eventsFile, instance) {
  let inc = 0;
  for (const l of fs.readFileSync(eventsFile, 'utf8').split('\n')) {
    if (!l) continue;
    const e = JSON.parse(l);
    if (e.instance === instance && e.event === 'ready') inc = Math.max(inc, e.incarnation);
  }
  return inc;
}

async function rebirths(o) {
  const count = Number(o.count || 20), pause = Number(o['pause-ms'] || 300);
  const timeoutMs = 1000 * Number(o['timeout-s'] || 15);
  const events = new Tail(o.events);
  const watcher = fs.watch(o.events);
  const log = o.log ? new Tail(o.log) : null;
  const firstRe = /first-instruction (\d+) (\d+)[.,](\d+)/;
  const results = [];
  try {
    for (let i = 0; i < count; i++) {
      const prev = lastReadyIncarnation(o.events, o.instance);
      if (!prev) throw new Error(`${o.instance} has no ready incarnation`);
      const alone = o['interleave-boot'] ? await bootOnce(o['interleave-boot']) : null;
      if (alone !== null) await sleep(pause);
      events.skipToEnd();
      if (log) log.skipToEnd();
      const t0 = epochMs();
      execFileSync(o.bin, ['kill', o.instance, '--now'], { cwd: o.app, timeout: 10000, stdio: 'ignore' });
      const tCmd = epochMs();
      const r = { kill_ms: t0, kill_cmd_ms: tCmd - t0 };
      const deadline = Date.now() + timeoutMs;
      while (!r.ready) {
        for (const l of events.lines()) {
          const e = JSON.parse(l);
          if (e.instance !== o.instance) continue;
          if (e.event === 'died' && e.incarnation === prev) r.died = Date.parse(e.time);
          if (e.incarnation > prev && e.event === 'born') { r.born = Date.parse(e.time); r.port = e.port; }
          if (e.incarnation > prev && e.event === 'ready') {
            r.ready = Date.parse(e.time); r.age_ms = e.age_ms; r.incarnation = e.incarnation;
          }
        }
        const probing = o['probe-port'] && r.port && r.accepts === undefined;
        if (probing && await tryConnect(r.port)) r.accepts = epochMs();
        if (r.ready) break;
        if (Date.now() > deadline) throw new Error(`${o.instance}: no ready event within ${timeoutMs} ms of kill #${i + 1}`);
        await changeOrTimeout(watcher, probing ? 1 : 10);
      }
      // The app may accept only after phoenix's ready (cannot, but keep probing briefly if so).
      for (let k = 0; o['probe-port'] && r.port && r.accepts === undefined && k < 2000; k++) {
        if (await tryConnect(r.port)) r.accepts = epochMs(); else await sleep(1);
      }
      r.seen_ms = epochMs() - t0;  // as the bench saw it (includes its own wake-up)
      if (log) {
        const logDeadline = Date.now() + 2000;
        while (r.first === undefined && Date.now() < logDeadline) {
          for (const l of log.lines()) {
            const m = firstRe.exec(l);
            if (m && Number(m[1]) === r.incarnation) r.first = Number(m[2]) * 1000 + Number(`0.${m[3]}`) * 1000;
          }
          if (r.first === undefined) await sleep(2);
        }
      }
      results.push({
        alone_boot: alone,
        kill_to_ready: r.ready - r.kill_ms,
        kill_to_died: r.died !== undefined ? r.died - r.kill_ms : null,
        died_to_born: r.died !== undefined && r.born !== undefined ? r.born - r.died : null,
        born_to_ready: r.born !== undefined ? r.ready - r.born : null,
        died_to_ready: r.died !== undefined ? r.ready - r.died : null,
        age_ms: r.age_ms,
        kill_cmd_ms: r.kill_cmd_ms,
        seen_ms: r.seen_ms,
        kill_to_first: r.first !== undefined ? r.first - r.kill_ms : null,
        died_to_first: r.first !== undefined && r.died !== undefined ? r.first - r.died : null,
        born_to_accepts: r.accepts !== undefined && r.born !== undefined ? r.accepts - r.born : null,
        accepts_to_ready: r.accepts !== undefined ? r.ready - r.accepts : null,
        incarnation: r.incarnation,
      });
      await sleep(pause);
    }
  } finally {
    watcher.close();
    events.close();
    if (log) log.close();
  }
  process.stdout.write(JSON.stringify(results) + '\n');
}

const o = args(process.argv.slice(2));
const cmd = o._[0];
const run = cmd === 'wait-ready' ? waitReady : cmd === 'rebirths' ? rebirths : null;
if (!run) { console.error('usage: phx.js wait-ready|rebirths ...'); process.exit(2); }
run(o).catch((e) => { console.error(`phx.js ${cmd}: ${e.message}`); process.exit(1); });
