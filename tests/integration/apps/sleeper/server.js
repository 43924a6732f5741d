'use strict';
// sleeper: never listens on $PORT, so it never becomes ready.
console.log(`sleeper ${process.env.PHOENIX_INSTANCE} will never listen on ${process.env.PORT}`);
setInterval(() => {}, 60000);
