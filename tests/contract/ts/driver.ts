// The TypeScript SDK a user generates with @hey-api/openapi-ts from openapi/*.json, driving
// the whole flow against the live services: a token (client credentials, HTTP Basic), the
// players listed, one created, replaced and deleted, and 400/401/403/404/409/422 seen as the
// typed errors the spec promises.
//
// The same SDKs carry a client without a secret: a `private_key_jwt` assertion in the token
// request body, a `DPoP` proof header (the server's `use_dpop_nonce` seen as a typed error with
// its `DPoP-Nonce`), and a write with `Authorization: DPoP` and a proof.
//
// run.sh generates the SDKs into ./gen (in a temporary copy of this folder), type-checks this
// file against them with tsc, then runs it with tsx. Environment: AUTH_URL, API_URL,
// WRITER (client_id:client_secret with players:write), READER (without it), SQUAD_NUMBER
// (free in the seeded squad), KEYED_CLIENT (a dpop_bound private_key_jwt client allowed
// players:write; the server requires DPoP nonces) and KEYED_KEY_FILE (its ES256 private key,
// PKCS #8 PEM, kid = RFC 7638 thumbprint).

import { createHash, createPrivateKey, generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createClient as createAuthClient } from './gen/auth/client';
import { issueToken } from './gen/auth/sdk.gen';
import type { OAuthError } from './gen/auth/types.gen';
import { createClient as createPlayersClient } from './gen/players/client';
import {
  createPlayer,
  deletePlayer,
  getPlayer,
  getPlayerBySquadNumber,
  listPlayers,
  protectedResourceMetadata,
  referPlayerToScouting,
  replacePlayer,
} from './gen/players/sdk.gen';
import type {
  Player,
  PlayerInput,
  Problem,
  ProtectedResourceMetadata,
} from './gen/players/types.gen';

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

const AUTH_URL = env('AUTH_URL');
const API_URL = env('API_URL');
const WRITER = env('WRITER');
const READER = env('READER');
const SQUAD_NUMBER = Number(env('SQUAD_NUMBER'));
const KEYED_CLIENT = env('KEYED_CLIENT');
const KEYED_KEY_FILE = env('KEYED_KEY_FILE');
const EXCHANGER = env('EXCHANGER');
const SCOUTING_URL = env('SCOUTING_URL');

let passed = 0;
let failed = 0;

function check(what: string, ok: boolean, detail?: unknown): void {
  if (ok) {
    passed += 1;
    console.log(`    ok    ${what}`);
  } else {
    failed += 1;
    console.log(`    FAIL  ${what}${detail === undefined ? '' : `: ${JSON.stringify(detail)}`}`);
  }
}

/** A typed error body of the players API, checked for its code (and field). */
function isProblem(
  error: Problem | undefined,
  status: number,
  code: string,
  field?: string,
): boolean {
  return (
    error !== undefined &&
    error.status === status &&
    error.error === code &&
    typeof error.requestId === 'string' &&
    (field === undefined || error.field === field)
  );
}

const authClient = createAuthClient({ baseUrl: AUTH_URL });
const playersClient = createPlayersClient({ baseUrl: API_URL });

/**
 * RFC 6749 §4.4 with client_secret_basic. The SDK sends the JSON body the spec allows beside
 * the standard form (the Python driver and the Postman collection send the form).
 */
async function token(credentials: string) {
  return issueToken({
    client: authClient,
    auth: credentials, // sent as `Authorization: Basic base64(id:secret)`
    body: { grant_type: 'client_credentials', audience: 'players-api' },
  });
}

async function main(): Promise<void> {
  console.log('  token endpoint (auth-server SDK)');
  const issued = await token(WRITER);
  check(
    'client credentials with HTTP Basic: 200 and a Bearer token',
    issued.response.status === 200 && issued.data?.token_type === 'Bearer',
    issued.error,
  );
  check(
    'no-store on the token response',
    issued.response.headers.get('cache-control') === 'no-store',
  );
  const writeToken = issued.data?.access_token ?? '';

  // RFC 8693: the players API's client exchanges the writer's token for a scouting-api one.
  const exchange = (audience: string) =>
    issueToken({
      client: authClient,
      auth: EXCHANGER,
      body: {
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        subject_token: writeToken,
        subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        audience,
      },
    });
  const exchanged = await exchange('scouting-api');
  const exchangedClaims = JSON.parse(
    Buffer.from((exchanged.data?.access_token ?? '..').split('.')[1] ?? '', 'base64url').toString() ||
      '{}',
  );
  check(
    'token exchange: 200, issued_token_type, the subject kept, act naming the actor',
    exchanged.response.status === 200 &&
      exchanged.data?.issued_token_type === 'urn:ietf:params:oauth:token-type:access_token' &&
      exchangedClaims.sub === WRITER.split(':')[0] &&
      exchangedClaims.aud === 'scouting-api' &&
      exchangedClaims.act?.sub === EXCHANGER.split(':')[0],
    exchanged.error ?? exchangedClaims,
  );
  const notAllowed = await exchange('players-api');
  check(
    'token exchange to an API the client may not exchange to: typed 400 invalid_target',
    notAllowed.response.status === 400 && notAllowed.error?.error === 'invalid_target',
    notAllowed.error,
  );
  check(
    'the granted scope is players:write',
    issued.data?.scope === 'players:write',
    issued.data?.scope,
  );

  const [clientId] = WRITER.split(':');
  const refused = await token(`${clientId}:not-the-secret`);
  const oauthError: OAuthError | undefined = refused.error;
  check(
    'a wrong secret is a typed 401 invalid_client',
    refused.response.status === 401 && oauthError?.error === 'invalid_client',
    refused.error,
  );
  check(
    'with a Basic challenge',
    refused.response.headers.get('www-authenticate') === 'Basic realm="auth-server"',
  );

  const readerIssued = await token(READER);
  check(
    'the reader client gets a token too',
    readerIssued.response.status === 200,
    readerIssued.error,
  );
  const readToken = readerIssued.data?.access_token ?? '';

  console.log('  players (resource-api SDK)');
  const listed = await listPlayers({ client: playersClient });
  const squad: Player[] = listed.data ?? [];
  check(
    'listPlayers: 200 with the seeded squad',
    listed.response.status === 200 && squad.length >= 26,
    squad.length,
  );
  check('no player has our squad number yet', !squad.some((p) => p.squadNumber === SQUAD_NUMBER));

  const newcomer: PlayerInput = {
    firstName: 'Contract',
    lastName: 'Tester',
    squadNumber: SQUAD_NUMBER,
    position: 'Centre-Forward',
    abbrPosition: 'CF',
    dateOfBirth: '2001-02-03',
    starting11: false,
  };

  const anonymous = await createPlayer({ client: playersClient, body: newcomer });
  check(
    'createPlayer without a token: typed 401',
    anonymous.response.status === 401 && anonymous.error?.status === 401,
    anonymous.error,
  );
  const metadataUrl = `${API_URL}/.well-known/oauth-protected-resource`;
  check(
    "with the bare Bearer challenge naming the API's RFC 9728 metadata",
    anonymous.response.headers.get('www-authenticate') ===
      `Bearer realm="players-api", resource_metadata="${metadataUrl}"`,
    anonymous.response.headers.get('www-authenticate'),
  );
  const described = await protectedResourceMetadata({ client: playersClient });
  const metadata: ProtectedResourceMetadata | undefined = described.data;
  check(
    'protectedResourceMetadata: 200, naming this API, its issuer and its scopes',
    described.response.status === 200 &&
      metadata?.resource === API_URL &&
      JSON.stringify(metadata?.authorization_servers) === JSON.stringify([AUTH_URL]) &&
      JSON.stringify(metadata?.scopes_supported) === JSON.stringify(['players:write']) &&
      metadata?.dpop_signing_alg_values_supported.includes('ES256') === true,
    metadata,
  );

  const forged = await createPlayer({
    client: playersClient,
    auth: `${writeToken}x`,
    body: newcomer,
  });
  check(
    'createPlayer with a bad token: typed 401 invalid_token',
    forged.response.status === 401 && isProblem(forged.error, 401, 'invalid_token'),
    forged.error,
  );

  const reader = await createPlayer({ client: playersClient, auth: readToken, body: newcomer });
  check(
    'createPlayer without players:write: typed 403 insufficient_scope',
    reader.response.status === 403 && isProblem(reader.error, 403, 'insufficient_scope'),
    reader.error,
  );
  check(
    'with the insufficient_scope challenge',
    (reader.response.headers.get('www-authenticate') ?? '').includes('scope="players:write"'),
  );

  const created = await createPlayer({ client: playersClient, auth: writeToken, body: newcomer });
  const player = created.data;
  check(
    'createPlayer: 201 with the player',
    created.response.status === 201 && player?.squadNumber === SQUAD_NUMBER,
    created.error,
  );
  check(
    'Location is the new player',
    created.response.headers.get('location') === `/players/${player?.id}`,
  );
  check('an absent middle name comes back as null', player?.middleName === null);

  const again = await createPlayer({ client: playersClient, auth: writeToken, body: newcomer });
  check(
    'the same squad number again: typed 409 squad_number_taken',
    again.response.status === 409 &&
      isProblem(again.error, 409, 'squad_number_taken', 'squadNumber'),
    again.error,
  );

  const blank = await createPlayer({
    client: playersClient,
    auth: writeToken,
    body: { ...newcomer, squadNumber: SQUAD_NUMBER + 1, firstName: '   ' },
  });
  check(
    'a blank first name: typed 422 naming firstName',
    blank.response.status === 422 && isProblem(blank.error, 422, 'validation_failed', 'firstName'),
    blank.error,
  );

  const malformed = await getPlayer({ client: playersClient, path: { id: 'not-a-uuid' } });
  check(
    'getPlayer with an id that is no UUID: typed 400',
    malformed.response.status === 400 && isProblem(malformed.error, 400, 'bad_request'),
    malformed.error,
  );

  const fetched = await getPlayer({ client: playersClient, path: { id: player?.id ?? '' } });
  check(
    'getPlayer by the new id: 200',
    fetched.response.status === 200 && fetched.data?.lastName === 'Tester',
    fetched.error,
  );

  const replaced = await replacePlayer({
    client: playersClient,
    auth: writeToken,
    path: { squadNumber: SQUAD_NUMBER },
    body: { ...newcomer, team: 'Contract FC', starting11: true },
  });
  check('replacePlayer: 204', replaced.response.status === 204, replaced.error);

  const mismatch = await replacePlayer({
    client: playersClient,
    auth: writeToken,
    path: { squadNumber: SQUAD_NUMBER },
    body: { ...newcomer, squadNumber: SQUAD_NUMBER + 1 },
  });
  check(
    'replacePlayer with another squad number in the body: typed 400',
    mismatch.response.status === 400 && isProblem(mismatch.error, 400, 'squad_number_mismatch'),
    mismatch.error,
  );

  const after = await getPlayerBySquadNumber({
    client: playersClient,
    path: { squadNumber: SQUAD_NUMBER },
  });
  check(
    'getPlayerBySquadNumber shows the replacement',
    after.data?.team === 'Contract FC' && after.data?.starting11 === true,
    after.data,
  );

  // The players API calls the scouting API for us (it exchanges our token, RFC 8693).
  const refer = (auth?: string) =>
    referPlayerToScouting({ client: playersClient, auth, path: { squadNumber: SQUAD_NUMBER } });
  const referred = await refer(writeToken);
  check(
    "referPlayerToScouting: 201 with the scouting API's copy, Location at the scouting API",
    referred.response.status === 201 &&
      referred.data?.squadNumber === SQUAD_NUMBER &&
      referred.data?.team === 'Contract FC' &&
      referred.response.headers.get('location') === `${SCOUTING_URL}/players/${referred.data?.id}`,
    referred.error,
  );
  const referredAgain = await refer(writeToken);
  check(
    'referPlayerToScouting again: typed 409 (the scouting API has it)',
    referredAgain.response.status === 409 && isProblem(referredAgain.error, 409, 'conflict'),
    referredAgain.error,
  );
  const referredAnonymously = await refer(undefined);
  check(
    'referPlayerToScouting without a token: typed 401',
    referredAnonymously.response.status === 401 &&
      isProblem(referredAnonymously.error, 401, 'unauthorized'),
    referredAnonymously.error,
  );

  const removed = await deletePlayer({
    client: playersClient,
    auth: writeToken,
    path: { squadNumber: SQUAD_NUMBER },
  });
  check('deletePlayer: 204', removed.response.status === 204, removed.error);

  const gone = await getPlayerBySquadNumber({
    client: playersClient,
    path: { squadNumber: SQUAD_NUMBER },
  });
  check(
    'then getPlayerBySquadNumber: typed 404',
    gone.response.status === 404 && isProblem(gone.error, 404, 'not_found'),
    gone.error,
  );

  const twice = await deletePlayer({
    client: playersClient,
    auth: writeToken,
    path: { squadNumber: SQUAD_NUMBER },
  });
  check(
    'deletePlayer again: typed 404',
    twice.response.status === 404 && isProblem(twice.error, 404, 'not_found'),
    twice.error,
  );

  await secretless();

  console.log(`typescript sdk: ${passed} passed, ${failed} failed`);
  process.exitCode = failed === 0 ? 0 : 1;
}

// ---- a client without a secret, through the same SDKs -----------------------------------

const b64 = (value: string | Buffer): string => Buffer.from(value).toString('base64url');

function thumbprint(jwk: Record<string, unknown>): string {
  const { crv, kty, x, y } = jwk;
  return createHash('sha256').update(JSON.stringify({ crv, kty, x, y })).digest('base64url');
}

function jws(key: KeyObject, header: object, claims: object): string {
  const input = `${b64(JSON.stringify(header))}.${b64(JSON.stringify(claims))}`;
  const signature = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${signature.toString('base64url')}`;
}

const now = (): number => Math.floor(Date.now() / 1000);

async function secretless(): Promise<void> {
  console.log('  a client without a secret (private_key_jwt, DPoP) through the same SDKs');
  const clientKey = createPrivateKey(readFileSync(KEYED_KEY_FILE));
  const kid = thumbprint(clientKey.export({ format: 'jwk' }) as Record<string, unknown>);
  const assertion = (): string =>
    jws(
      clientKey,
      { alg: 'ES256', typ: 'JWT', kid },
      { iss: KEYED_CLIENT, sub: KEYED_CLIENT, aud: AUTH_URL, iat: now(), exp: now() + 60, jti: randomUUID() },
    );
  const dpopKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const { d: _private, ...dpopJwk } = dpopKey.export({ format: 'jwk' }) as Record<string, unknown>;
  const proof = (htm: string, htu: string, extra: Record<string, string> = {}): string =>
    jws(dpopKey, { typ: 'dpop+jwt', alg: 'ES256', jwk: dpopJwk }, { htm, htu, iat: now(), jti: randomUUID(), ...extra });
  const tokenUrl = `${AUTH_URL}/auth/token`;
  const request = (nonce?: string) =>
    issueToken({
      client: authClient,
      headers: { DPoP: proof('POST', tokenUrl, nonce ? { nonce } : {}) },
      body: {
        grant_type: 'client_credentials',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: assertion(),
      },
    });

  const first = await request();
  const nonce = first.response.headers.get('dpop-nonce') ?? undefined;
  check(
    'issueToken with client_assertion and a DPoP proof, no nonce: typed 400 use_dpop_nonce with DPoP-Nonce',
    first.response.status === 400 && first.error?.error === 'use_dpop_nonce' && nonce !== undefined,
    first.error,
  );
  const bound = await request(nonce);
  check(
    'again with the nonce: 200, token_type DPoP, cnf.jkt of the proof key',
    bound.response.status === 200 &&
      bound.data?.token_type === 'DPoP' &&
      JSON.parse(Buffer.from((bound.data?.access_token ?? '..').split('.')[1], 'base64url').toString() || '{}')
        .cnf?.jkt === thumbprint(dpopJwk),
    bound.error ?? bound.data?.token_type,
  );
  const accessToken = bound.data?.access_token ?? '';
  const ath = createHash('sha256').update(accessToken).digest('base64url');

  const player: PlayerInput = {
    firstName: 'Sdk',
    lastName: 'Keyholder',
    squadNumber: SQUAD_NUMBER,
    position: 'Goalkeeper',
    abbrPosition: 'GK',
    dateOfBirth: '2000-10-10',
    starting11: false,
  };
  const created = await createPlayer({
    client: playersClient,
    headers: {
      Authorization: `DPoP ${accessToken}`,
      DPoP: proof('POST', `${API_URL}/players`, { ath }),
    },
    body: player,
  });
  check(
    'createPlayer with Authorization: DPoP and a proof: 201',
    created.response.status === 201 && created.data?.squadNumber === SQUAD_NUMBER,
    created.error,
  );
  const asBearer = await deletePlayer({
    client: playersClient,
    auth: accessToken,
    path: { squadNumber: SQUAD_NUMBER },
  });
  check(
    'the bound token as Bearer (the SDK\'s auth): typed 401 with a DPoP challenge',
    asBearer.response.status === 401 &&
      (asBearer.response.headers.get('www-authenticate') ?? '').startsWith('DPoP '),
    asBearer.error,
  );
  const deleted = await deletePlayer({
    client: playersClient,
    headers: {
      Authorization: `DPoP ${accessToken}`,
      DPoP: proof('DELETE', `${API_URL}/players/squadnumber/${SQUAD_NUMBER}`, { ath }),
    },
    path: { squadNumber: SQUAD_NUMBER },
  });
  check('deletePlayer with a fresh proof: 204', deleted.response.status === 204, deleted.error);
}

main().catch((err: unknown) => {
  console.error('typescript sdk: the driver itself failed:', err);
  process.exitCode = 1;
});
