// The peer of bench/run.sh: node-oidc-provider (panva/node-oidc-provider, version pinned in
// package.json / package-lock.json) set up like our auth-server for the same load:
// - one Node process, the default in-memory adapter;
// - the client-credentials grant for one confidential client (client_secret_basic; its secret
//   is compared as plain text, as oidc-provider does for client_secret_basic);
// - JWT access tokens (RFC 9068, `typ: at+jwt`) signed ES256 through the resourceIndicators
//   feature: every token request resolves to one resource server, audience `players-api`,
//   scope `players:write`, lifetime 3600 s — the claims our server puts in its tokens.
//
// Environment: PEER_PORT (default 9100), PEER_CLIENT_ID, PEER_CLIENT_SECRET; PEER_SIGNING_JWK
// and PEER_COOKIE_KEY (set by cluster.mjs so that every worker signs with the same key; alone,
// a fresh key is generated).
// Listens on 127.0.0.1 only. Prints one line `peer ready on http://127.0.0.1:PORT` when it
// accepts connections. Run as one process (`node provider.mjs`) or as a cluster of workers
// (`node cluster.mjs`, see there).
import { generateKeyPairSync, randomBytes } from 'node:crypto';

import Provider from 'oidc-provider';

const port = Number(process.env.PEER_PORT ?? 9100);
const clientId = process.env.PEER_CLIENT_ID ?? 'bench-client';
const clientSecret = process.env.PEER_CLIENT_SECRET ?? 'bench-client-secret-0123456789';
const issuer = `http://127.0.0.1:${port}`;
const resource = 'urn:players-api'; // RFC 8707 wants an absolute URI; the token's aud is below
const audience = 'players-api';
const scope = 'players:write';

// A fresh P-256 signing key per run, as our server generates one in its fresh database (in a
// cluster, the primary generates it once for all workers).
const privateJwk = process.env.PEER_SIGNING_JWK
  ? JSON.parse(process.env.PEER_SIGNING_JWK)
  : generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
const signingKey = {
  ...privateJwk,
  kid: 'bench-es256',
  alg: 'ES256',
  use: 'sig',
};

const provider = new Provider(issuer, {
  jwks: { keys: [signingKey] },
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      // The provider's only key is P-256: its default (RS256) would have no key.
      id_token_signed_response_alg: 'ES256',
      scope,
    },
  ],
  scopes: [scope],
  cookies: { keys: [process.env.PEER_COOKIE_KEY ?? randomBytes(32).toString('base64url')] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: false },
    revocation: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => resource,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, indicator) => {
        if (indicator !== resource) throw new Provider.errors.InvalidTarget();
        return {
          scope,
          audience,
          accessTokenTTL: 3600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        };
      },
    },
  },
  ttl: { ClientCredentials: 3600 },
});

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`peer ready on ${issuer}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    process.exit(0);
  });
}
