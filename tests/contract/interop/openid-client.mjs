// panva's openid-client (v6), as a user's service would use it, against the live services: no
// code of ours on the client side. It discovers the issuer (RFC 8414), authenticates with
// `private_key_jwt` (its `PrivateKeyJwt`), gets a DPoP-bound token through its DPoP handle
// (answering the server's `use_dpop_nonce` by itself), writes to the players API with that
// token and a fresh proof (`fetchProtectedResource`), and introspects the token.
// The server's side is checked too: the client is `dpop_bound` (a request without a proof is
// refused), an assertion is single-use, the bound token is refused as a plain bearer token and
// with a proof from another key.
//
// Environment: AUTH_URL, API_URL, CLIENT_ID (a dpop_bound private_key_jwt client allowed
// players:write), KEY_FILE (its private key, PKCS #8 PEM; the kid is the key's RFC 7638
// thumbprint), SQUAD_NUMBER (free in the seeded squad).

import { createHash, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as client from 'openid-client';

function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

const AUTH_URL = env('AUTH_URL');
const API_URL = env('API_URL');
const CLIENT_ID = env('CLIENT_ID');
const SQUAD_NUMBER = Number(env('SQUAD_NUMBER'));

let passed = 0;
let failed = 0;
function check(what, ok, detail) {
  if (ok) {
    passed += 1;
    console.log(`    ok    ${what}`);
  } else {
    failed += 1;
    console.log(`    FAIL  ${what}${detail === undefined ? '' : `: ${JSON.stringify(detail)}`}`);
  }
}

/** RFC 7638 thumbprint of a public EC or RSA JWK. */
function thumbprint(jwk) {
  const members = jwk.kty === 'EC' ? ['crv', 'kty', 'x', 'y'] : ['e', 'kty', 'n'];
  return createHash('sha256')
    .update(JSON.stringify(Object.fromEntries(members.map((m) => [m, jwk[m]]))))
    .digest('base64url');
}

// The client's key as WebCrypto wants it, its kid the thumbprint keys.mjs gave it.
const keyObject = createPrivateKey(readFileSync(env('KEY_FILE')));
const kid = thumbprint(keyObject.export({ format: 'jwk' }));
const signingKey = await crypto.subtle.importKey(
  'pkcs8',
  keyObject.export({ format: 'der', type: 'pkcs8' }),
  { name: 'ECDSA', namedCurve: 'P-256' },
  false,
  ['sign'],
);

// Every request openid-client sends, recorded (to count nonce round trips and to replay one).
const sent = [];
const recordingFetch = async (url, options) => {
  const response = await fetch(url, options);
  sent.push({
    url: String(url),
    method: options.method,
    headers: new Headers(options.headers),
    body: options.body === undefined ? undefined : String(options.body),
    status: response.status,
    error: response.status >= 400 ? await response.clone().text() : undefined,
  });
  return response;
};

const config = await client.discovery(
  new URL(AUTH_URL),
  CLIENT_ID,
  { token_endpoint_auth_method: 'private_key_jwt' },
  client.PrivateKeyJwt({ key: signingKey, kid }),
  { algorithm: 'oauth2', execute: [client.allowInsecureRequests], [client.customFetch]: recordingFetch },
);
config[client.customFetch] = recordingFetch;
const metadata = config.serverMetadata();
check(
  'discovery (RFC 8414): private_key_jwt and ES256 advertised for client authentication and DPoP',
  metadata.token_endpoint_auth_methods_supported?.includes('private_key_jwt') &&
    metadata.token_endpoint_auth_signing_alg_values_supported?.includes('ES256') &&
    metadata.dpop_signing_alg_values_supported?.includes('ES256'),
  metadata,
);

// A dpop_bound client: without a proof, no token.
try {
  await client.clientCredentialsGrant(config, { scope: 'players:write' });
  check('no DPoP proof: refused (the client is dpop_bound)', false, 'a token was issued');
} catch (err) {
  check(
    'no DPoP proof: refused with 400 invalid_dpop_proof (the client is dpop_bound)',
    err instanceof client.ResponseBodyError && err.status === 400 && err.error === 'invalid_dpop_proof',
    { name: err.name, status: err.status, error: err.error },
  );
}

// With its DPoP handle. The server requires nonces: the first request is answered
// use_dpop_nonce with a DPoP-Nonce header, and openid-client retries with it.
const dpopKeys = await client.randomDPoPKeyPair('ES256');
const dpop = client.getDPoPHandle(config, dpopKeys);
const jkt = thumbprint(await crypto.subtle.exportKey('jwk', dpopKeys.publicKey));
sent.length = 0;
const tokens = await client.clientCredentialsGrant(config, { scope: 'players:write' }, { DPoP: dpop });
check(
  'client credentials with private_key_jwt and DPoP: token_type DPoP',
  tokens.token_type === 'dpop' && typeof tokens.access_token === 'string',
  { token_type: tokens.token_type },
);
const tokenRequests = sent.filter((r) => r.url.endsWith('/auth/token'));
check(
  'the server asked for a nonce (400 use_dpop_nonce, DPoP-Nonce) and openid-client retried with it',
  tokenRequests.length === 2 &&
    tokenRequests[0].status === 400 &&
    tokenRequests[0].error?.includes('use_dpop_nonce') &&
    tokenRequests[1].status === 200,
  tokenRequests.map((r) => ({ status: r.status, error: r.error })),
);
const claims = JSON.parse(Buffer.from(tokens.access_token.split('.')[1], 'base64url'));
check(
  "the access token is bound to the handle's key: cnf.jkt is its thumbprint",
  claims.cnf?.jkt === jkt && claims.client_id === CLIENT_ID,
  { cnf: claims.cnf, client_id: claims.client_id },
);

// The assertion openid-client sent is single-use: the same request again is refused.
const issued = tokenRequests[1];
const replay = await fetch(issued.url, { method: 'POST', headers: issued.headers, body: issued.body });
const replayBody = await replay.json().catch(() => ({}));
check(
  'the same client_assertion (and proof) sent again: 401 invalid_client',
  replay.status === 401 && replayBody.error === 'invalid_client',
  { status: replay.status, body: replayBody },
);

// A write to the players API with the bound token and a fresh proof for it.
const player = {
  firstName: 'Interop',
  lastName: 'OpenidClient',
  squadNumber: SQUAD_NUMBER,
  position: 'Goalkeeper',
  abbrPosition: 'GK',
  team: 'Loopback FC',
  league: 'Contract League',
  dateOfBirth: '1999-09-09',
  starting11: false,
};
const playersUrl = new URL('/players', API_URL);
const created = await client.fetchProtectedResource(
  config,
  tokens.access_token,
  playersUrl,
  'POST',
  JSON.stringify(player),
  new Headers({ 'content-type': 'application/json' }),
  { DPoP: dpop },
);
const createdBody = await created.json().catch(() => ({}));
check(
  'POST /players with Authorization: DPoP and a proof (fetchProtectedResource): 201',
  created.status === 201 && createdBody.squadNumber === SQUAD_NUMBER,
  { status: created.status, body: createdBody },
);

// The bound token without its proof, as a plain bearer token: refused with a DPoP challenge.
const asBearer = await fetch(new URL(`/players/squadnumber/${SQUAD_NUMBER}`, API_URL), {
  method: 'DELETE',
  headers: { authorization: `Bearer ${tokens.access_token}` },
});
const challenge = asBearer.headers.get('www-authenticate') ?? '';
check(
  'the bound token as Bearer: 401 with a DPoP challenge',
  asBearer.status === 401 && /^DPoP /.test(challenge) && challenge.includes('algs='),
  { status: asBearer.status, challenge },
);

// A proof made by another key (openid-client's handle for a different key pair): refused.
const otherHandle = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
const otherKey = await client.fetchProtectedResource(
  config,
  tokens.access_token,
  new URL(`/players/squadnumber/${SQUAD_NUMBER}`, API_URL),
  'DELETE',
  undefined,
  undefined,
  { DPoP: otherHandle },
).catch((err) => err);
const otherStatus = otherKey instanceof Response ? otherKey.status : otherKey.response?.status ?? otherKey.status;
check('the bound token with a proof from another key: 401', otherStatus === 401, {
  status: otherStatus,
  error: otherKey instanceof Error ? otherKey.message : undefined,
});

// And with its own key again: the player is deleted.
const deleted = await client.fetchProtectedResource(
  config,
  tokens.access_token,
  new URL(`/players/squadnumber/${SQUAD_NUMBER}`, API_URL),
  'DELETE',
  undefined,
  undefined,
  { DPoP: dpop },
);
check('DELETE with the right proof: 204', deleted.status === 204, { status: deleted.status });

// Introspection, authenticated by a new assertion: active, DPoP, bound to the key.
const introspection = await client.tokenIntrospection(config, tokens.access_token);
check(
  'introspection (private_key_jwt): active, token_type DPoP, cnf.jkt',
  introspection.active === true &&
    introspection.token_type === 'DPoP' &&
    introspection.cnf?.jkt === jkt &&
    introspection.client_id === CLIENT_ID,
  introspection,
);

console.log(`openid-client: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
