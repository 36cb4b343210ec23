// Pre-made requests for the secretless legs of bench/run.sh: every client assertion and every
// DPoP proof is single-use, so wrk cannot repeat one request; this signs them all beforehand
// (ES256, node:crypto) and writes one request per line for bench/wrk/leg.lua (LEG_REQUEST_FILE):
//   METHOD <TAB> PATH <TAB> DPOP-PROOF (or empty) <TAB> BODY
//
//   node secretless.mjs keys DIR NAME
//       DIR/NAME.pem (private key) and DIR/NAME.jwks.json (its public JWKS, kid = thumbprint)
//   node secretless.mjs proof KEY METHOD URL [ACCESS_TOKEN]
//       prints one DPoP proof
//   node secretless.mjs assertions KEY CLIENT_ID AUDIENCE TOKEN_URL COUNT OUT
//       COUNT client-credentials token requests, each with a new private_key_jwt assertion
//   node secretless.mjs dpop-writes KEY API_URL ACCESS_TOKEN PLAYERS COUNT OUT
//       COUNT PUTs of /players/squadnumber/{n} (n = 1..PLAYERS in turn), each with a new proof

import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { createWriteStream, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const b64 = (value) => Buffer.from(value).toString('base64url');

function thumbprint(jwk) {
  return createHash('sha256')
    .update(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }))
    .digest('base64url');
}

function loadKey(file) {
  const key = createPrivateKey(readFileSync(file));
  const { d: _, ...publicJwk } = key.export({ format: 'jwk' });
  return { key, publicJwk, kid: thumbprint(publicJwk) };
}

function jws(key, header, claims) {
  const input = `${b64(JSON.stringify(header))}.${b64(JSON.stringify(claims))}`;
  const signature = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${signature.toString('base64url')}`;
}

function proof({ key, publicJwk }, method, url, token) {
  const claims = {
    htm: method,
    htu: url,
    iat: Math.floor(Date.now() / 1000),
    jti: randomBytes(16).toString('hex'),
  };
  if (token) claims.ath = createHash('sha256').update(token).digest('base64url');
  return jws(key, { typ: 'dpop+jwt', alg: 'ES256', jwk: publicJwk }, claims);
}

/** Writes COUNT lines made by line(i), through a stream (the files are large). */
async function writeLines(out, count, line) {
  const stream = createWriteStream(out);
  for (let i = 0; i < count; i += 1) {
    if (!stream.write(`${line(i)}\n`)) await new Promise((resolve) => stream.once('drain', resolve));
  }
  await new Promise((resolve, reject) => stream.end((err) => (err ? reject(err) : resolve())));
}

const [command, ...args] = process.argv.slice(2);
switch (command) {
  case 'keys': {
    const [dir, name] = args;
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    writeFileSync(join(dir, `${name}.pem`), privateKey.export({ format: 'pem', type: 'pkcs8' }), {
      mode: 0o600,
    });
    const { publicJwk, kid } = loadKey(join(dir, `${name}.pem`));
    writeFileSync(
      join(dir, `${name}.jwks.json`),
      JSON.stringify({ keys: [{ ...publicJwk, kid, alg: 'ES256', use: 'sig' }] }),
    );
    break;
  }
  case 'proof': {
    const [keyFile, method, url, token] = args;
    console.log(proof(loadKey(keyFile), method, url, token));
    break;
  }
  case 'assertions': {
    const [keyFile, clientId, audience, tokenUrl, count, out] = args;
    const signer = loadKey(keyFile);
    const path = new URL(tokenUrl).pathname;
    const now = Math.floor(Date.now() / 1000);
    await writeLines(out, Number(count), () => {
      const assertion = jws(
        signer.key,
        { alg: 'ES256', typ: 'JWT', kid: signer.kid },
        {
          iss: clientId,
          sub: clientId,
          aud: audience,
          iat: now,
          exp: now + 300,
          jti: randomBytes(16).toString('hex'),
        },
      );
      const body =
        'grant_type=client_credentials&scope=players%3Awrite' +
        '&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer' +
        `&client_assertion=${assertion}`;
      return `POST\t${path}\t\t${body}`;
    });
    break;
  }
  case 'dpop-writes': {
    const [keyFile, apiUrl, token, players, count, out] = args;
    const signer = loadKey(keyFile);
    await writeLines(out, Number(count), (i) => {
      const n = (i % Number(players)) + 1;
      const path = `/players/squadnumber/${n}`;
      const body = JSON.stringify({
        firstName: 'Bench',
        lastName: `Player ${n}`,
        squadNumber: n,
        position: 'Midfielder',
        abbrPosition: 'CM',
        team: 'Bench FC',
        league: 'Loopback League',
        dateOfBirth: `2000-01-${String((n % 28) + 1).padStart(2, '0')}`,
        starting11: false,
      });
      return `PUT\t${path}\t${proof(signer, 'PUT', `${apiUrl}${path}`, token)}\t${body}`;
    });
    break;
  }
  default:
    console.error('usage: node secretless.mjs keys|proof|assertions|dpop-writes ...');
    process.exit(2);
}
