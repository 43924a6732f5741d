// phoenix audit's corpus: one small Express app per classic kind of server-local state, and the
// usual fixes, chosen by $MODE (set in .env by the tests):
//   sessions  memory-session   express-session's default MemoryStore
//             file-session     session-file-store, files under sessions/
//             redis-session    connect-redis on $REDIS_URL                       (stateless)
//             cookie-session   cookie-session: the session is a signed cookie    (stateless)
//             jwt              a signed token in Authorization: Bearer           (stateless)
//   uploads   multer-dest      multer({ dest: 'uploads/' })
//             shared-uploads   multer's memory storage, the bytes kept in Redis  (stateless)
//   data      module-array     items in a module-level array
//             json-db          items in data/items.json
//             redis-items      items in a Redis list                             (stateless)
//   realtime  socketio         a socket.io chat (long polling sessions in the process)
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const express = require('express');

const MODE = process.env.MODE;
const PORT = Number(process.env.PORT);
const SECRET = 'audit-corpus-secret';
const app = express();
app.use(express.urlencoded({ extended: false }));
app.use(express.json());

let redis;
async function redisClient() {
  if (!redis) {
    const { createClient } = require('redis');
    redis = createClient({ url: process.env.REDIS_URL });
    await redis.connect();
  }
  return redis;
}

// ---- sessions
let currentUser = () => undefined;
if (['memory-session', 'file-session', 'redis-session'].includes(MODE)) {
  const session = require('express-session');
  let store;
  if (MODE === 'file-session') store = new (require('session-file-store')(session))({ path: 'sessions/', retries: 0, logFn() {} });
  if (MODE === 'redis-session') {
    const { RedisStore } = require('connect-redis');
    store = new RedisStore({ client: { get: async (k) => (await redisClient()).get(k), set: async (k, v, o) => (await redisClient()).set(k, v, o), del: async (k) => (await redisClient()).del(k), expire: async (k, s) => (await redisClient()).expire(k, s) }, prefix: 'sess:' });
  }
  app.use(session({ secret: SECRET, resave: false, saveUninitialized: false, store }));
  currentUser = (req) => req.session.user;
}
if (MODE === 'cookie-session') {
  app.use(require('cookie-session')({ name: 'session', keys: [SECRET] }));
  currentUser = (req) => req.session.user;
}
if (MODE === 'jwt') {
  const jwt = require('jsonwebtoken');
  currentUser = (req) => {
    const m = /^Bearer (.+)$/.exec(req.get('Authorization') || '');
    try { return m ? jwt.verify(m[1], SECRET).user : undefined; } catch { return undefined; }
  };
}

app.post('/login', (req, res) => {
  const user = String(req.body.user || 'nobody');
  if (MODE === 'jwt') return res.json({ user, token: require('jsonwebtoken').sign({ user }, SECRET) });
  req.session.user = user;
  res.json({ user });
});
app.get('/me', (req, res) => {
  const user = currentUser(req);
  if (!user) return res.status(401).json({ error: 'not logged in' });
  res.json({ user });
});

// ---- uploads
const multer = require('multer');
const upload = multer(MODE === 'multer-dest' ? { dest: 'uploads/' } : { storage: multer.memoryStorage() });
app.post('/files', upload.single('file'), async (req, res) => {
  if (!req.file) return res.status(400).json({ error: 'field "file" is required' });
  let id = req.file.filename;
  if (MODE === 'shared-uploads') {
    id = crypto.randomBytes(16).toString('hex');
    await (await redisClient()).set(`file:${id}`, req.file.buffer.toString('base64'));
  }
  res.status(201).json({ id, size: req.file.size });
});
app.get('/files/:id', async (req, res) => {
  if (!/^[0-9a-f]{32}$/.test(req.params.id)) return res.status(404).json({ error: 'no such file' });
  if (MODE === 'shared-uploads') {
    const data = await (await redisClient()).get(`file:${req.params.id}`);
    if (!data) return res.status(404).json({ error: 'no such file' });
    return res.type('application/octet-stream').send(Buffer.from(data, 'base64'));
  }
  res.sendFile(path.join(__dirname, 'uploads', req.params.id), (err) => {
    if (err && !res.headersSent) res.status(404).json({ error: 'no such file' });
  });
});

// ---- data
const items = [];
const DB = path.join(__dirname, 'data', 'items.json');
app.post('/items', async (req, res) => {
  const item = { id: crypto.randomUUID(), name: String(req.body.name || '') };
  if (MODE === 'module-array') items.push(item);
  if (MODE === 'json-db') {
    let all = [];
    try { all = JSON.parse(fs.readFileSync(DB, 'utf8')); } catch { /* none yet */ }
    all.push(item);
    fs.mkdirSync(path.dirname(DB), { recursive: true });
    fs.writeFileSync(DB, JSON.stringify(all));
  }
  if (MODE === 'redis-items') await (await redisClient()).rPush('items', JSON.stringify(item));
  res.status(201).json(item);
});
app.get('/items', async (req, res) => {
  let all = [];
  if (MODE === 'module-array') all = items;
  if (MODE === 'json-db') { try { all = JSON.parse(fs.readFileSync(DB, 'utf8')); } catch { /* none */ } }
  if (MODE === 'redis-items') all = (await (await redisClient()).lRange('items', 0, -1)).map((s) => JSON.parse(s));
  res.json({ count: all.length, names: all.map((i) => i.name) });
});

app.get('/', (req, res) => res.type('text').send(`audit corpus app, mode ${MODE}\n`));

const server = http.createServer(app);
if (MODE === 'socketio') {
  const { Server } = require('socket.io');
  const io = new Server(server);
  io.on('connection', (socket) => socket.on('chat', (msg) => io.emit('chat', msg)));
}
server.listen(PORT, '127.0.0.1', () => console.log(`audit-express (${MODE}) on ${PORT}`));
process.on('SIGTERM', () => { server.close(() => process.exit(0)); setTimeout(() => process.exit(0), 2000).unref(); if (redis) redis.quit().catch(() => {}); });
