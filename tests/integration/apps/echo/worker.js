'use strict';
// A process type that does not listen: prints its environment once, then idles.
console.log(`worker env ${JSON.stringify({
  instance: process.env.PHOENIX_INSTANCE,
  incarnation: process.env.PHOENIX_INCARNATION,
  dyno: process.env.DYNO,
  port: process.env.PORT,
  fromDotenv: process.env.FROM_DOTENV,
})}`);
// SPAWN_ORPHAN=1: start a `sleep` in its own session that outlives this process, as a daemon would.
if (process.env.SPAWN_ORPHAN === '1') {
  const orphan = require('child_process').spawn('sleep', ['300'], { detached: true, stdio: 'ignore' });
  orphan.unref();
  console.log(`worker spawned orphan pid ${orphan.pid}`);
}
const timer = setInterval(() => {}, 60000);
process.on('SIGTERM', () => clearInterval(timer));
