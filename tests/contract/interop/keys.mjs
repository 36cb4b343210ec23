// Writes a client key pair for the interop legs: DIR/NAME.pem (the private key, PKCS #8) and
// DIR/NAME.jwks.json (its public JWKS, `kid` and `alg` set), the files an operator registers
// with `auth-server clients add --jwks-file`.
//
//   node keys.mjs DIR NAME ES256|RS256 [NAME ES256|RS256 ...]

import { createHash, generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [dir, ...pairs] = process.argv.slice(2);
if (!dir || pairs.length === 0 || pairs.length % 2 !== 0) {
  console.error('usage: node keys.mjs DIR NAME ES256|RS256 [NAME ALG ...]');
  process.exit(2);
}

/** RFC 7638 thumbprint of a public JWK: the required members in lexicographic order. */
function thumbprint(jwk) {
  const members = jwk.kty === 'EC' ? ['crv', 'kty', 'x', 'y'] : ['e', 'kty', 'n'];
  const canonical = JSON.stringify(Object.fromEntries(members.map((m) => [m, jwk[m]])));
  return createHash('sha256').update(canonical).digest('base64url');
}

for (let i = 0; i < pairs.length; i += 2) {
  const [name, alg] = [pairs[i], pairs[i + 1]];
  const { publicKey, privateKey } =
    alg === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : alg === 'RS256'
        ? generateKeyPairSync('rsa', { modulusLength: 2048 })
        : (() => {
            throw new Error(`unsupported algorithm ${alg}`);
          })();
  const jwk = publicKey.export({ format: 'jwk' });
  const kid = thumbprint(jwk);
  writeFileSync(join(dir, `${name}.pem`), privateKey.export({ format: 'pem', type: 'pkcs8' }), {
    mode: 0o600,
  });
  writeFileSync(
    join(dir, `${name}.jwks.json`),
    JSON.stringify({ keys: [{ ...jwk, kid, alg, use: 'sig' }] }, null, 2),
  );
  console.log(`    ${name}: ${alg} key ${kid}`);
}
