'use strict';
// photos-stateless: the same photo-sharing app as ../photos-stateful, with no server-local state.
//
//   uploads   -> kept in memory only while the request runs (multer.memoryStorage()), then in Redis
//   sessions  -> Redis (connect-redis 8 over the node-redis 4 client)
//   photo list-> Redis (a list of ids plus one hash per photo); nothing cached in the process
//
// Any instance can serve any request, and an instance can be killed at any time without losing
// anything. It never writes to its own folder (phoenix.toml: [filesystem] mode = "strict").

const crypto = require('crypto');
const express = require('express');
const multer = require('multer');
const session = require('express-session');
const { RedisStore } = require('connect-redis');
const { createClient, commandOptions } = require('redis');

const PORT = process.env.PORT;
if (!PORT || !/^\d+$/.test(PORT) || Number(PORT) < 1 || Number(PORT) > 65535) {
  console.error(`photos-stateless: PORT must be set to a TCP port number (got ${PORT === undefined ? 'nothing' : JSON.stringify(PORT)})`);
  process.exit(2);
}
const INSTANCE = process.env.PHOENIX_INSTANCE || process.env.DYNO || '-';
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

// Redis keys. Everything the app knows lives under these.
const K = {
  list: 'photos:list',                 // list of photo ids, newest first
  meta: (id) => `photos:meta:${id}`,   // hash: id, user, name, type, size, uploadedAt
  data: (id) => `photos:data:${id}`,   // string: the image bytes
  sessionPrefix: 'photos:sess:',
};
const MAX_LIST = 100;

// disableOfflineQueue: while Redis is unreachable, commands fail at once (HTTP 500/503) instead of
// queueing and leaving requests hanging until it is back.
const redis = createClient({ url: REDIS_URL, disableOfflineQueue: true });
let lastRedisError = '';
redis.on('error', (err) => {
  // node-redis reconnects by itself; log each distinct error once, not every retry.
  if (err.message !== lastRedisError) console.error(`photos-stateless: redis ${REDIS_URL}: ${err.message}`);
  lastRedisError = err.message;
});
redis.on('ready', () => { lastRedisError = ''; });

const upload = multer({
  storage: multer.memoryStorage(),
  limits: { fileSize: 5 * 1024 * 1024, files: 1 },
});

const app = express();
app.disable('x-powered-by');
app.set('trust proxy', true);

app.use(session({
  store: new RedisStore({ client: redis, prefix: K.sessionPrefix }),
  secret: process.env.SESSION_SECRET || 'phoenix-demo-secret',
  resave: false,
  saveUninitialized: false,
  cookie: { httpOnly: true, sameSite: 'lax' },
}));
app.use(express.urlencoded({ extended: false, limit: '16kb' }));
app.use(express.json({ limit: '16kb' }));

const ID_RE = /^[0-9a-f]{32}$/;
const wantsHtml = (req) => req.accepts(['json', 'html']) === 'html';
// Express 4 does not catch rejected promises of async handlers.
const wrap = (fn) => (req, res, next) => Promise.resolve(fn(req, res, next)).catch(next);

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

async function listPhotos() {
  const ids = await redis.lRange(K.list, 0, MAX_LIST - 1);
  const metas = await Promise.all(ids.map((id) => redis.hGetAll(K.meta(id))));
  return metas
    .filter((m) => m && m.id)
    .map((m) => ({ ...m, size: Number(m.size) }));
}

app.get('/healthz', wrap(async (req, res) => {
  try {
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error('no PONG within 2 s')), 2000);
    });
    await Promise.race([redis.ping(), timeout]).finally(() => clearTimeout(timer));
  } catch (err) {
    return res.status(503).type('text/plain').send(`redis: ${err.message}`);
  }
  res.type('text/plain').send('ok');
}));

app.get('/', wrap(async (req, res) => {
  const user = req.session.user;
  const items = (await listPhotos()).map((p) =>
    `<li><a href="/photos/${p.id}"><img src="/photos/${p.id}" alt="" height="48"> ${escapeHtml(p.name)}</a> by ${escapeHtml(p.user)}</li>`).join('\n');
  res.type('html').send(`<!doctype html>
<html><head><meta charset="utf-8"><title>photos-stateless</title></head>
<body>
<h1>photos-stateless</h1>
<p>Served by instance <code>${escapeHtml(INSTANCE)}</code> (pid ${process.pid}).</p>
${user
    ? `<p>Logged in as <b>${escapeHtml(user)}</b>.</p>
<form method="post" action="/photos" enctype="multipart/form-data">
  <input type="file" name="photo" accept="image/*" required> <button>Upload</button>
</form>`
    : `<form method="post" action="/login">
  <input name="user" placeholder="your name" required maxlength="64"> <button>Log in</button>
</form>`}
<h2>Photos</h2>
<ul>
${items || '<li>none yet</li>'}
</ul>
</body></html>
`);
}));

app.post('/login', (req, res, next) => {
  const user = req.body && typeof req.body.user === 'string' ? req.body.user.trim() : '';
  if (!user || user.length > 64) {
    return res.status(400).json({ error: 'field "user" is required (1 to 64 characters)' });
  }
  req.session.regenerate((err) => {
    if (err) return next(err);
    req.session.user = user;
    req.session.save((err2) => {
      if (err2) return next(err2);
      if (wantsHtml(req)) return res.redirect(303, '/');
      res.json({ user, instance: INSTANCE });
    });
  });
});

app.get('/me', (req, res) => {
  if (!req.session.user) return res.status(401).json({ error: 'not logged in' });
  res.json({ user: req.session.user, instance: INSTANCE });
});

function requireLogin(req, res, next) {
  if (!req.session.user) return res.status(401).json({ error: 'not logged in' });
  next();
}

app.post('/photos', requireLogin, upload.single('photo'), wrap(async (req, res) => {
  const f = req.file;
  if (!f) return res.status(400).json({ error: 'multipart field "photo" is required' });
  if (!/^image\//.test(f.mimetype)) return res.status(415).json({ error: `not an image: ${f.mimetype}` });
  const photo = {
    id: crypto.randomBytes(16).toString('hex'),
    user: req.session.user,
    name: f.originalname,
    type: f.mimetype,
    size: f.size,
    uploadedAt: new Date().toISOString(),
  };
  await redis.multi()
    .set(K.data(photo.id), f.buffer)
    .hSet(K.meta(photo.id), { ...photo, size: String(photo.size) })
    .lPush(K.list, photo.id)
    .exec();
  if (wantsHtml(req)) return res.redirect(303, '/');
  res.status(201).location(`/photos/${photo.id}`).json(photo);
}));

app.get('/photos', wrap(async (req, res) => {
  res.json(await listPhotos());
}));

app.get('/photos/:id', wrap(async (req, res) => {
  const id = req.params.id;
  if (!ID_RE.test(id)) return res.status(404).json({ error: 'no such photo' });
  const [type, data] = await Promise.all([
    redis.hGet(K.meta(id), 'type'),
    redis.get(commandOptions({ returnBuffers: true }), K.data(id)),
  ]);
  if (!data) return res.status(404).json({ error: 'no such photo' });
  res.set('Cache-Control', 'public, max-age=0');
  res.type(type || 'application/octet-stream').send(data);
}));

app.use((err, req, res, next) => {
  if (err instanceof multer.MulterError) {
    return res.status(err.code === 'LIMIT_FILE_SIZE' ? 413 : 400).json({ error: err.message });
  }
  console.error(err);
  if (res.headersSent) return next(err);
  res.status(500).json({ error: 'internal error' });
});

let server;
let stopping = false;

async function main() {
  await redis.connect();
  server = app.listen(Number(PORT), () => {
    console.log(`photos-stateless listening on ${PORT} (instance ${INSTANCE})`);
  });
  server.on('error', (err) => {
    console.error(`photos-stateless: cannot listen on ${PORT}: ${err.message}`);
    process.exit(1);
  });
}

function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  console.log(`photos-stateless: ${signal}, closing`);
  const quitRedis = () => {
    if (!redis.isReady) process.exit(0); // still connecting (or lost): nothing to flush
    setTimeout(() => process.exit(0), 2000).unref(); // QUIT gets 2 s
    redis.quit().then(() => process.exit(0), () => process.exit(0));
  };
  if (!server) return quitRedis();
  server.close(quitRedis);
  server.closeIdleConnections();
  // Requests still running after 10 s are cut off; phoenix's own stop_timeout is the hard bound.
  setTimeout(() => server.closeAllConnections(), 10000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

main().catch((err) => {
  console.error(`photos-stateless: cannot start: ${err.message}`);
  process.exit(1);
});
