// Checks one access token before a leg measures the service that issued it, so a leg never
// measures the wrong answer: the signature verifies against the issuer's published key (named
// by `kid`, with the key's own algorithm), and the header and claims are listed.
// Usage: node bench/check-token.mjs TOKEN JWKS_URL
// Prints one JSON line: {"verified":true,"alg":"ES256","header":[...names],"claims":[...names]}
// and exits 1 if the signature does not verify.
import { createPublicKey, verify } from 'node:crypto';

const [token, jwksUrl] = process.argv.slice(2);
if (!token || !jwksUrl) {
  console.error('usage: node bench/check-token.mjs TOKEN JWKS_URL');
  process.exit(2);
}
const [h, p, s] = token.split('.');
const header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
const { keys } = await (await fetch(jwksUrl)).json();
const jwk = keys.find((k) => k.kid === header.kid);
const hashes = { ES256: 'sha256', EdDSA: null, RS256: 'sha256' }; // the algorithms the legs use
let verified = false;
if (jwk && (jwk.alg ?? header.alg) === header.alg && header.alg in hashes) {
  const key = createPublicKey({ key: jwk, format: 'jwk' });
  const options = header.alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : { key };
  verified = verify(hashes[header.alg], Buffer.from(`${h}.${p}`), options, Buffer.from(s, 'base64url'));
}
console.log(JSON.stringify({
  verified,
  alg: header.alg,
  typ: header.typ,
  header: Object.keys(header).sort(),
  claims: Object.keys(claims).sort(),
  integer_times: ['iat', 'nbf', 'exp'].filter((c) => c in claims).every((c) => Number.isInteger(claims[c])),
}));
process.exit(verified ? 0 : 1);
