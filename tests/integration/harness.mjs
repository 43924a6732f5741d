// The integration harness: runs the real phoenix binary (PHOENIX_BIN) against a private copy of a
// test app, in its own temporary folder, state folder and ports. Every wait polls a condition
// against a deadline; every phoenix started here is stopped (SIGTERM, then SIGKILL) when the test
// ends, whatever happened.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '..', '..');
export const APPS = path.join(HERE, 'apps');
export const BIN = process.env.PHOENIX_BIN ? path.resolve(process.env.PHOENIX_BIN) : path.join(REPO, 'build', 'phoenix');

const POLL_MS = 50;
const running = new Set(); // child processes started here, killed on exit if still alive

process.on('exit', () => {
  for (const child of running) {
    try { process.kill(child.pid, 'SIGKILL'); } catch { /* already gone */ }
  }
});

/** Polls `probe` (sync or async) until it returns a truthy value; throws `describe()` after the deadline. */
export async function waitFor(probe, { timeout = 10000, what = 'condition', describe } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() >= deadline) {
      const detail = describe ? `\n${describe()}` : '';
      throw new Error(`timed out after ${timeout} ms waiting for ${what}${detail}`);
    }
    await delay(POLL_MS);
  }
}

/** One poll interval; only ever used between two checks of a condition with a deadline. */
function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A TCP port that was free a moment ago (bound to 127.0.0.1:0, then closed). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Resolves true when 127.0.0.1:port accepts a connection. */
export function portAccepts(port, timeout = 500) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const done = (ok) => { socket.destroy(); resolve(ok); };
    socket.setTimeout(timeout, () => done(false));
    socket.on('connect', () => done(true));
    socket.on('error', () => done(false));
  });
}

/**
 * GET or POST over plain HTTP with a deadline; resolves { status, headers, body, json }.
 * `localAddress` (e.g. '127.0.0.2') is the address the connection comes from.
 */
export function httpRequest(port, urlPath = '/', { method = 'GET', headers = {}, body, timeout = 5000, localAddress } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, method, headers, timeout, localAddress }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, body: text, json });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} 127.0.0.1:${port}${urlPath}: no answer within ${timeout} ms`)));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

export const httpGet = (port, urlPath = '/', options = {}) => httpRequest(port, urlPath, { ...options, method: 'GET' });

/**
 * A private copy of tests/integration/apps/NAME (or of any folder given as `source`) in a fresh
 * temporary folder, with its own PHOENIX_STATE_DIR, events file and marker. `files` adds or
 * overwrites files in the copy ({ 'phoenix.toml': '...' }). Removed when the test ends.
 */
export function makeApp(t, name, { source, files = {} } = {}) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `phx-it-${name}-`));
  const dir = path.join(root, 'app');
  fs.cpSync(source || path.join(APPS, name), dir, { recursive: true });
  for (const [rel, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), content);
  }
  const stateDir = path.join(root, 'state');
  fs.mkdirSync(stateDir);
  const app = {
    root,
    dir,
    stateDir,
    eventsFile: path.join(root, 'events.jsonl'),
    // Unique per test: phoenix and every process it starts inherit it in their environment.
    marker: `phxmark${randomBytes(6).toString('hex')}`,
    env(extra = {}) {
      return { ...process.env, PHOENIX_STATE_DIR: stateDir, PHX_TEST_MARKER: this.marker, ...extra };
    },
  };
  // One hook for the whole test: processes are stopped last-started-first, then the folder goes.
  // (node:test runs `after` hooks in the order they were added, so they are not stacked there.)
  const cleanups = [];
  app.onCleanup = (fn) => cleanups.push(fn);
  t.after(async () => {
    while (cleanups.length) {
      try { await cleanups.pop()(); } catch { /* go on stopping the rest */ }
    }
    // Layers of a phoenix that could not stop may still be mounted; never fail cleanup on that.
    try { fs.rmSync(root, { recursive: true, force: true, maxRetries: 3 }); } catch { /* best effort */ }
  });
  return app;
}

/** Reads every complete JSON line of an events file (missing file: none yet). */
export function readEvents(file) {
  let text;
  try { text = fs.readFileSync(file, 'utf8'); } catch { return []; }
  const events = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try { events.push(JSON.parse(line)); } catch { /* a line still being written */ }
  }
  return events;
}

/** Spawns a child, records its output, and resolves { code, signal, stdout, stderr } with a deadline. */
function startChild(file, args, { cwd, env, stdin = 'ignore' } = {}) {
  const child = spawn(file, args, { cwd, env, stdio: [stdin, 'pipe', 'pipe'] });
  running.add(child);
  const out = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (d) => { out.stdout += d; });
  child.stderr.setEncoding('utf8').on('data', (d) => { out.stderr += d; });
  const exited = new Promise((resolve) => {
    child.on('error', (err) => { out.stderr += `spawn error: ${err.message}\n`; });
    child.on('close', (code, signal) => {
      running.delete(child);
      resolve({ code, signal, stdout: out.stdout, stderr: out.stderr });
    });
  });
  return { child, out, exited };
}

/** Resolves the child's result, or null if it is still running after `ms`. */
function exitWithin(exited, ms) {
  let timer;
  return Promise.race([
    exited,
    new Promise((resolve) => { timer = setTimeout(() => resolve(null), ms); }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Runs `phoenix ARGS` with cwd = the app folder and the app's state folder, killed after
 * `timeout` ms. Resolves { code, signal, stdout, stderr }.
 */
export async function phoenix(app, args, { cwd = app.dir, timeout = 15000, env = {} } = {}) {
  const run = startChild(BIN, args, { cwd, env: app.env(env) });
  const result = await exitWithin(run.exited, timeout);
  if (result) return result;
  run.child.kill('SIGKILL');
  const killed = await run.exited;
  throw new Error(`phoenix ${args.join(' ')} did not return within ${timeout} ms\nstdout: ${killed.stdout}\nstderr: ${killed.stderr}`);
}

/**
 * Starts a long-running phoenix command (e.g. `logs -f`) in the app folder. The handle has
 * `out` (live stdout/stderr), `exited` and `waitOutput`; it is SIGKILLed when the test ends.
 */
export function phoenixBackground(app, args, { env = {} } = {}) {
  const run = startChild(BIN, args, { cwd: app.dir, env: app.env(env) });
  app.onCleanup(async () => {
    if (running.has(run.child)) {
      try { run.child.kill('SIGKILL'); } catch { /* gone */ }
      await exitWithin(run.exited, 5000);
    }
  });
  return {
    child: run.child,
    out: run.out,
    exited: run.exited,
    exitWithin: (ms) => exitWithin(run.exited, ms),
    waitOutput(pattern, { timeout = 8000 } = {}) {
      const match = (s) => (typeof pattern === 'string' ? s.includes(pattern) : pattern.test(s));
      return waitFor(() => {
        if (match(run.out.stdout)) return true;
        if (!running.has(run.child)) {
          throw new Error(`phoenix ${args.join(' ')} exited (status ${run.child.exitCode ?? run.child.signalCode}) ` +
            `before printing ${pattern}\nstdout:\n${run.out.stdout}\nstderr:\n${run.out.stderr}`);
        }
        return false;
      }, {
        timeout, what: `phoenix ${args.join(' ')} to print ${pattern}`,
        describe: () => `stdout so far:\n${run.out.stdout}\nstderr:\n${run.out.stderr}`,
      });
    },
  };
}

/** `phoenix ps --json`, parsed. */
export async function ps(app) {
  const r = await phoenix(app, ['ps', '--json']);
  if (r.code !== 0) throw new Error(`phoenix ps --json exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/**
 * Starts `phoenix up DIR --port P --events FILE ARGS` in the foreground. The returned handle
 * waits for events and output, and is stopped when the test ends (SIGTERM, then SIGKILL).
 */
export async function up(app, args = [], { env = {}, port, wrap = [] } = {}) {
  const publicPort = port || (await freePort());
  const fullArgs = ['up', app.dir, '--port', String(publicPort), '--events', app.eventsFile, ...args];
  // `wrap`: a command that execs phoenix (e.g. setpriv to run it as another user).
  const run = wrap.length
    ? startChild(wrap[0], [...wrap.slice(1), BIN, ...fullArgs], { cwd: app.dir, env: app.env(env) })
    : startChild(BIN, fullArgs, { cwd: app.dir, env: app.env(env) });
  let result = null;
  run.exited.then((r) => { result = r; });
  const handle = {
    app,
    port: publicPort,
    pid: run.child.pid,
    child: run.child,
    exited: run.exited,
    get result() { return result; },
    get stdout() { return run.out.stdout; },
    get stderr() { return run.out.stderr; },
    events: () => readEvents(app.eventsFile),
    describe() {
      return `phoenix ${fullArgs.join(' ')}${result ? ` (exited ${result.code ?? result.signal})` : ' (running)'}\n` +
        `--- terminal ---\n${tail(run.out.stdout)}\n--- stderr ---\n${tail(run.out.stderr)}\n` +
        `--- events ---\n${tail(fs.existsSync(app.eventsFile) ? fs.readFileSync(app.eventsFile, 'utf8') : '(none)')}`;
    },
    /** Waits for the first event (in file order) matching `pred`; fails early if phoenix exits. */
    async waitEvent(pred, { timeout = 10000, what = 'an event' } = {}) {
      return waitFor(() => {
        const found = readEvents(app.eventsFile).find(pred);
        if (found) return found;
        if (result) throw new Error(`phoenix exited while waiting for ${what}\n${handle.describe()}`);
        return undefined;
      }, { timeout, what, describe: () => handle.describe() });
    },
    /** Waits until `pred(events)` over all events so far returns a truthy value. */
    async waitEvents(pred, { timeout = 10000, what = 'events' } = {}) {
      return waitFor(() => {
        const value = pred(readEvents(app.eventsFile));
        if (value) return value;
        if (result) throw new Error(`phoenix exited while waiting for ${what}\n${handle.describe()}`);
        return undefined;
      }, { timeout, what, describe: () => handle.describe() });
    },
    /** Waits until phoenix's terminal output contains `text` (string or RegExp). */
    async waitOutput(text, { timeout = 10000 } = {}) {
      const match = (s) => (typeof text === 'string' ? s.includes(text) : text.test(s));
      return waitFor(() => match(run.out.stdout) || match(run.out.stderr), {
        timeout, what: `output ${text}`, describe: () => handle.describe(),
      });
    },
    /** Waits until `ps --json` lists `count` instances of `type`, all ready. Resolves the list. */
    async waitReady(count, { type = 'web', timeout = 10000 } = {}) {
      let last;
      return waitFor(async () => {
        if (result) throw new Error(`phoenix exited while waiting for ${count} ready ${type}\n${handle.describe()}`);
        const r = await phoenix(app, ['ps', '--json']);
        if (r.code !== 0) { last = r.stderr; return undefined; }
        last = r.stdout;
        const list = JSON.parse(r.stdout);
        const ofType = list.filter((i) => i.type === type);
        return ofType.length === count && ofType.every((i) => i.state === 'ready') ? list : undefined;
      }, { timeout, what: `${count} ready ${type} instance(s)`, describe: () => `last ps: ${last}\n${handle.describe()}` });
    },
    /** Resolves phoenix's exit { code, signal, stdout, stderr }, failing after `timeout`. */
    async waitExit(timeout = 10000) {
      const r = await exitWithin(run.exited, timeout);
      if (!r) throw new Error(`phoenix did not exit within ${timeout} ms\n${handle.describe()}`);
      return r;
    },
    /** SIGTERM, a bounded wait, then SIGKILL. Always resolves. */
    async shutdown(graceMs = 10000) {
      if (result) return result;
      try { run.child.kill('SIGTERM'); } catch { /* gone */ }
      const r = await exitWithin(run.exited, graceMs);
      if (r) return r;
      try { run.child.kill('SIGKILL'); } catch { /* gone */ }
      return exitWithin(run.exited, 5000);
    },
  };
  app.onCleanup(() => handle.shutdown());
  return handle;
}

/** The last `n` lines of a text, for failure messages. */
function tail(text, n = 60) {
  const lines = String(text).split('\n');
  return lines.length > n ? `... ${lines.length - n} lines before\n${lines.slice(-n).join('\n')}` : text;
}

function readProc(pid, file) {
  try { return fs.readFileSync(`/proc/${pid}/${file}`); } catch { return null; }
}

function allPids() {
  return fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number);
}

/** Processes (other than this one) whose environment or command line contains `marker`. */
export function processesWith(marker) {
  const found = [];
  for (const pid of allPids()) {
    if (pid === process.pid) continue;
    const environ = readProc(pid, 'environ');
    const cmdline = readProc(pid, 'cmdline');
    if ((environ && environ.includes(marker)) || (cmdline && cmdline.includes(marker))) {
      found.push({ pid, cmdline: cmdline ? cmdline.toString('utf8').replaceAll('\0', ' ').trim() : '?' });
    }
  }
  return found;
}

/** Mount lines, in any process's mount namespace, that mention `text` (e.g. a state folder). */
export function mountsWith(text) {
  const found = [];
  for (const pid of allPids()) {
    const info = readProc(pid, 'mountinfo');
    if (!info) continue;
    for (const line of info.toString('utf8').split('\n')) {
      if (line.includes(text)) found.push(`pid ${pid}: ${line}`);
    }
  }
  return found;
}

/** Asserts, waiting up to `timeout`, that no process carries the app's marker or root path. */
export async function waitNothingLeft(app, { timeout = 3000 } = {}) {
  let left = [];
  let mounts = [];
  await waitFor(() => {
    left = [...processesWith(app.marker), ...processesWith(app.root)];
    mounts = mountsWith(app.stateDir);
    return left.length === 0 && mounts.length === 0;
  }, {
    timeout,
    what: 'no process and no mount of the test left',
    describe: () => `processes: ${JSON.stringify(left, null, 1)}\nmounts:\n${mounts.join('\n')}`,
  });
}

/** Resolves true when a Redis server on 127.0.0.1:port answers PING with PONG. */
export function redisPong(port, timeout = 500) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok) => { socket.destroy(); resolve(ok); };
    socket.setTimeout(timeout, () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => { reply += d; if (reply.includes('\r\n')) done(reply.startsWith('+PONG')); });
    socket.on('error', () => done(false));
  });
}

/**
 * A private, throw-away redis-server on a free loopback port (no persistence), stopped when the
 * test ends. Resolves { port, url, pid }.
 */
export async function startRedis(app) {
  const dir = fs.mkdtempSync(path.join(app.root, 'redis-'));
  const port = await freePort();
  const run = startChild('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '',
    '--appendonly', 'no', '--daemonize', 'no', '--dir', dir], { cwd: dir, env: process.env });
  app.onCleanup(async () => {
    if (!running.has(run.child)) return;
    run.child.kill('SIGTERM');
    if (!(await exitWithin(run.exited, 5000))) {
      run.child.kill('SIGKILL');
      await exitWithin(run.exited, 5000);
    }
  });
  await waitFor(async () => {
    if (!running.has(run.child)) throw new Error(`redis-server exited: ${run.out.stdout}${run.out.stderr}`);
    return redisPong(port);
  }, { timeout: 10000, what: `redis-server to answer PING on ${port}`, describe: () => run.out.stdout + run.out.stderr });
  return { port, url: `redis://127.0.0.1:${port}`, pid: run.child.pid };
}

/** Runs any command with a deadline (SIGKILL after it). Resolves { code, signal, stdout, stderr }. */
export async function runCommand(file, args, { cwd, env = process.env, timeout = 30000 } = {}) {
  const run = startChild(file, args, { cwd, env });
  const result = await exitWithin(run.exited, timeout);
  if (result) return result;
  run.child.kill('SIGKILL');
  const killed = await run.exited;
  throw new Error(`${file} ${args.join(' ')} did not finish within ${timeout} ms\n${killed.stdout}\n${killed.stderr}`);
}

/** Resident memory of a process in KiB (VmRSS in /proc/PID/status), or null when it is gone. */
export function vmRssKb(pid) {
  const status = readProc(pid, 'status');
  if (!status) return null;
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status.toString('utf8'));
  return m ? Number(m[1]) : null;
}

/**
 * A raw TCP client on 127.0.0.1:port for exact HTTP bytes (pipelining, smuggling vectors,
 * 100-continue, WebSocket handshakes). Everything received is kept in `data` (a Buffer, `text`
 * as latin1); `closed` turns true when the peer ends or resets the connection. Destroyed when the
 * test ends.
 */
export function rawConnect(port, { t, timeout = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const client = {
      socket,
      data: Buffer.alloc(0),
      closed: false,
      error: null,
      get text() { return this.data.toString('latin1'); },
      write(bytes) { socket.write(bytes); },
      /** Resolves once `pred(text, data)` holds for what came so far; fails after `timeout`. */
      waitData(pred, { timeout: ms = 5000, what = 'data' } = {}) {
        const match = () => (typeof pred === 'string' ? this.text.includes(pred)
          : pred instanceof RegExp ? pred.test(this.text) : pred(this.text, this.data));
        return waitFor(() => match() || (this.closed && match()), {
          timeout: ms, what, describe: () => `received (${this.closed ? 'closed' : 'open'}): ${JSON.stringify(this.text.slice(0, 2000))}`,
        });
      },
      /** Resolves once the peer closed the connection; fails after `timeout`. */
      waitClosed({ timeout: ms = 5000 } = {}) {
        return waitFor(() => this.closed, {
          timeout: ms, what: 'the connection to close', describe: () => `received: ${JSON.stringify(this.text.slice(0, 2000))}`,
        });
      },
      destroy() { socket.destroy(); },
    };
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`connect to ${port}: timed out`)); }, timeout);
    socket.on('connect', () => { clearTimeout(timer); resolve(client); });
    socket.on('data', (d) => { client.data = Buffer.concat([client.data, d]); });
    socket.on('end', () => { client.closed = true; });
    socket.on('close', () => { client.closed = true; });
    socket.on('error', (err) => { client.error = err; client.closed = true; clearTimeout(timer); reject(err); });
    if (t) t.after(() => socket.destroy());
  });
}

/**
 * The fewest ready instances (of those whose name starts with `prefix`) at any point once
 * `count` were ready, replayed from the events: capacity never dips when this equals `count`.
 */
export function minReady(events, count, prefix = 'web.') {
  const ready = new Set();
  let full = false;
  let min = Infinity;
  for (const e of events) {
    if (!e.instance || !e.instance.startsWith(prefix)) continue;
    const key = `${e.instance}#${e.incarnation}`;
    if (e.event === 'ready') ready.add(key);
    if (e.event === 'draining' || e.event === 'stopping' || e.event === 'died') ready.delete(key);
    if (ready.size >= count) full = true;
    if (full) min = Math.min(min, ready.size);
  }
  return min;
}
