// The peer as its users run it on a multi-core machine: node-oidc-provider (provider.mjs) in a
// `node:cluster` of PEER_WORKERS processes (default 2, one per core here) sharing one port.
// The client-credentials grant needs no shared state (nothing is stored for a JWT access
// token), so the in-memory adapter of each worker is enough; the primary generates one signing
// key (and cookie key) and hands it to every worker, so every worker signs with the same `kid`
// and publishes the same JWKS. The primary accepts the connections and passes them to the
// workers in turn (Node's default scheduling on Linux), as a deployment would run it.
//
// Environment: as provider.mjs, plus PEER_WORKERS. SIGTERM/SIGINT stop the workers, then the
// primary. A worker that dies unexpectedly stops the whole cluster (a benchmark must not go on
// with one worker fewer).
import cluster from 'node:cluster';
import { generateKeyPairSync, randomBytes } from 'node:crypto';

const workers = Number(process.env.PEER_WORKERS ?? 2);

if (cluster.isPrimary) {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const env = {
    PEER_SIGNING_JWK: JSON.stringify(privateKey.export({ format: 'jwk' })),
    PEER_COOKIE_KEY: randomBytes(32).toString('base64url'),
  };
  let stopping = false;
  let exited = 0;
  for (let i = 0; i < workers; i += 1) cluster.fork(env);
  cluster.on('exit', (worker, code, signal) => {
    exited += 1;
    if (!stopping) {
      console.error(`peer cluster: worker ${worker.process.pid} exited (${signal ?? code}); stopping`);
      stopping = true;
      for (const w of Object.values(cluster.workers)) w?.kill();
      process.exitCode = 1;
    }
    if (exited === workers) process.exit();
  });
  for (const signal of ['SIGTERM', 'SIGINT']) {
    process.on(signal, () => {
      stopping = true;
      for (const w of Object.values(cluster.workers)) w?.kill();
    });
  }
  console.log(`peer cluster: primary ${process.pid}, ${workers} workers`);
} else {
  await import('./provider.mjs');
}
