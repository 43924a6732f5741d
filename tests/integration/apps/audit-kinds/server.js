// One small app, no dependencies, that keeps state in one of the ways phoenix audit must name
// (or in none), chosen by $MODE:
//   memory-session  sessions in a Map in the process (as express-session's MemoryStore)
//   cookie-session  the session is an HMAC-signed cookie: stateless
//   global-cache    notes kept in a module-level array
//   json-db         notes kept in data/notes.json on the local disk
//   tmp-db          the same in os.tmpdir() (a private /tmp each instance loses)
//   memory-token    bearer tokens in a Map (POST /token, GET /token/refresh, GET /token/me);
//                   a refresh with an unknown token answers 200 with no new token (the trap:
//                   the status matches, the value is missing); in other modes tokens are signed
//   polling         long-polling sessions in a Map (as engine.io / socket.io's polling transport)
//   stateless       notes nowhere, answers computed from the request alone
const http = require('node:http');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const MODE = process.env.MODE || 'stateless';
const PORT = Number(process.env.PORT);
const SECRET = 'audit-test-secret';
const sessions = new Map();
const notes = [];
const polls = new Map();
const tokens = new Map();
const DB = MODE === 'tmp-db' ? path.join(require('node:os').tmpdir(), 'notes.json')
  : path.join(__dirname, 'data', 'notes.json');
const ON_DISK = MODE === 'json-db' || MODE === 'tmp-db';

function readBody(req) {
  return new Promise((resolve) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString()));
  });
}
function cookies(req) {
  const out = {};
  for (const part of (req.headers.cookie || '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return out;
}
function json(res, status, value, headers = {}) {
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(JSON.stringify(value));
}
function sign(user) {
  return `${Buffer.from(user).toString('base64url')}.${crypto.createHmac('sha256', SECRET).update(user).digest('base64url')}`;
}
function userOf(req) {
  const c = cookies(req);
  if (MODE === 'memory-session') return sessions.get(c.sid);
  if (MODE === 'cookie-session' && c.session) {
    const [u, mac] = c.session.split('.');
    const user = Buffer.from(u || '', 'base64url').toString();
    if (sign(user) === c.session && mac) return user;
  }
  return undefined;
}
function loadNotes() {
  if (ON_DISK) {
    try { return JSON.parse(fs.readFileSync(DB, 'utf8')); } catch { return []; }
  }
  return MODE === 'global-cache' ? notes : [];
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  const body = await readBody(req);
  if (req.method === 'POST' && url.pathname === '/login') {
    const user = new URLSearchParams(body).get('user') || 'nobody';
    if (MODE === 'memory-session') {
      const sid = crypto.randomBytes(16).toString('hex');
      sessions.set(sid, user);
      return json(res, 200, { user }, { 'Set-Cookie': `sid=${sid}; Path=/; HttpOnly` });
    }
    return json(res, 200, { user }, { 'Set-Cookie': `session=${sign(user)}; Path=/; HttpOnly` });
  }
  if (url.pathname.startsWith('/token')) {
    const bearer = (req.headers.authorization || '').replace(/^Bearer /, '');
    let known;
    if (MODE === 'memory-token') {
      known = tokens.get(bearer);
    } else {
      const user = Buffer.from(bearer.split('.')[0] || '', 'base64url').toString();
      known = bearer && sign(user) === bearer ? user : undefined;
    }
    const issue = (user) => {
      if (MODE !== 'memory-token') return sign(user);
      const t = crypto.randomBytes(16).toString('hex');
      tokens.set(t, user);
      return t;
    };
    if (req.method === 'POST' && url.pathname === '/token') {
      const user = new URLSearchParams(body).get('user') || 'nobody';
      return json(res, 200, { user }, { 'X-Auth-Token': issue(user) });
    }
    if (url.pathname === '/token/refresh') {
      return json(res, 200, { ok: true }, known ? { 'X-Auth-Token': issue(known) } : {});
    }
    if (url.pathname === '/token/me') return known ? json(res, 200, { user: known }) : json(res, 401, { error: 'no token' });
  }
  if (url.pathname === '/me') {
    const user = userOf(req);
    if (!user) {
      // A new, anonymous session for an unknown cookie, as express-session does.
      return json(res, 401, { error: 'not logged in' });
    }
    return json(res, 200, { user, at: new Date().toISOString() });
  }
  if (url.pathname === '/notes/new') {
    // A per-request CSRF token in standard base64 (+ / =), as Rails writes authenticity_token:
    // it varies by itself and is no state.
    const token = () => crypto.randomBytes(32).toString('base64');
    res.writeHead(200, { 'Content-Type': 'text/html' });
    return res.end(`<meta name="csrf-token" content="${token()}">\n<form method="post" action="/notes">` +
      `<input type="hidden" name="authenticity_token" value="${token()}"><input name="text"></form>\n`);
  }
  if (req.method === 'POST' && url.pathname === '/notes') {
    const note = { id: crypto.randomUUID(), text: JSON.parse(body || '{}').text || '' };
    if (MODE === 'global-cache') notes.push(note);
    if (ON_DISK) {
      const all = loadNotes();
      all.push(note);
      fs.mkdirSync(path.dirname(DB), { recursive: true });
      fs.writeFileSync(DB, JSON.stringify(all));
    }
    return json(res, 201, note);
  }
  if (url.pathname === '/notes') return json(res, 200, { notes: loadNotes().map((n) => n.text) });
  if (url.pathname === '/socket.io/') {
    const sid = url.searchParams.get('sid');
    if (!sid) {
      const id = crypto.randomBytes(10).toString('base64url');
      polls.set(id, []);
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      return res.end(`0{"sid":"${id}","upgrades":[],"pingInterval":25000}`);
    }
    if (!polls.has(sid)) return json(res, 400, { code: 1, message: 'Session ID unknown' });
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    return res.end('6');
  }
  res.writeHead(200, { 'Content-Type': 'text/plain' });
  res.end(`hello from a ${MODE} app\n`);
});
server.listen(PORT, '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
