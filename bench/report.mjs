// Turns the result lines of one bench/run.sh run (results.jsonl) into bench/results.md.
// Usage: node bench/report.mjs RESULTS.jsonl OUTPUT.md
// Machine and versions are read here, at the end of the run, from the same machine.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const [resultsFile, outputFile] = process.argv.slice(2);
if (!resultsFile || !outputFile) {
  console.error('usage: node bench/report.mjs RESULTS.jsonl OUTPUT.md');
  process.exit(2);
}
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const lines = readFileSync(resultsFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const run = lines.find((l) => l.kind === 'run') ?? {};
const legs = Object.fromEntries(lines.filter((l) => l.kind === 'leg').map((l) => [l.id, l]));
const services = {};
for (const l of lines.filter((x) => x.kind === 'service' || x.kind === 'service_end')) {
  services[l.name] = { ...services[l.name], ...l };
}
const limits = {};
for (const l of lines.filter((x) => x.kind === 'limit')) limits[`${l.m.op}/${l.m.alg}`] = l.m;

// ---- machine and versions -------------------------------------------------------------------
function cmd(file, args, opts = {}) {
  try {
    return execFileSync(file, args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts })
      .trim();
  } catch (err) {
    // wrk -v exits non-zero after printing its version.
    const out = `${err.stdout ?? ''}${err.stderr ?? ''}`.trim();
    return out || 'unknown';
  }
}
const cpuModel = (() => {
  try {
    const m = readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.+)$/m);
    return m ? m[1].trim() : os.cpus()[0]?.model ?? 'unknown';
  } catch {
    return os.cpus()[0]?.model ?? 'unknown';
  }
})();
const peerPkg = path.join(root, 'bench/peer/node_modules/oidc-provider/package.json');
const peerVersion = existsSync(peerPkg) ? JSON.parse(readFileSync(peerPkg, 'utf8')).version : 'not installed';
const machine = {
  nproc: cmd('nproc', []),
  cpu: cpuModel,
  memGiB: (os.totalmem() / 2 ** 30).toFixed(1),
  kernel: `${os.type()} ${os.release()}`,
};
const versions = {
  rustc: cmd('rustc', ['--version']),
  node: process.version,
  oidcProvider: peerVersion,
  wrk: cmd('wrk', ['-v']).split('\n')[0].replace(/\s*Copyright.*$/, ''),
  openssl: cmd('openssl', ['version']),
  commit: (() => {
    const head = cmd('git', ['rev-parse', '--short', 'HEAD']);
    const dirty = cmd('git', ['status', '--porcelain', '--untracked-files=no']) !== '' ? ' + uncommitted changes' : '';
    return `${head}${dirty}`;
  })(),
};

// ---- formatting -----------------------------------------------------------------------------
const int = (n) => (n == null || Number.isNaN(n) ? '—' : Math.round(n).toLocaleString('en-US'));
const ms = (us) => {
  if (us == null) return '—';
  const v = us / 1000;
  return v >= 100 ? `${v.toFixed(0)} ms` : v >= 10 ? `${v.toFixed(1)} ms` : `${v.toFixed(2)} ms`;
};
const mb = (kb) => (kb == null || kb === 0 ? '—' : `${(kb / 1024).toFixed(1)} MB`);
const ratio = (a, b) => (a == null || b == null || b === 0 ? '—' : `${(a / b).toFixed(2)}×`);
const usPer = (seconds, n) => (n ? `${((seconds * 1e6) / n).toFixed(0)} µs` : '—');

function errors(leg) {
  const w = leg.wrk;
  const socket = w.connect_errors + w.read_errors + w.write_errors + w.timeouts;
  // With an expected status (rejections), an error is any other answer; else wrk's non-2xx/3xx.
  const wrong = w.expect == null ? w.non_2xx_3xx : w.unexpected;
  return { total: socket + wrong, socket, wrong, last: w.last_unexpected };
}
function errorText(leg) {
  const e = errors(leg);
  if (e.total === 0) return '0';
  const parts = [];
  if (e.wrong) parts.push(`${int(e.wrong)} ${leg.wrk.expect == null ? 'non-2xx' : `not ${leg.wrk.expect}${e.last ? ` (e.g. ${e.last})` : ''}`}`);
  if (e.socket) parts.push(`${int(e.socket)} socket/timeout`);
  return `**${parts.join(', ')}**`;
}

// The in-process figure each leg is compared with.
const LEGS = [
  {
    id: 'issue-auth-es256', what: 'Token issuance, ES256', service: 'auth-es256',
    limit: 'sign/ES256', limitText: 'ES256 signs',
  },
  {
    id: 'issue-auth-eddsa', what: 'Token issuance, EdDSA', service: 'auth-eddsa',
    limit: 'sign/EdDSA', limitText: 'EdDSA signs',
  },
  {
    id: 'issue-auth-es256-nocache', what: 'Token issuance, ES256, verified-secret cache off', service: 'auth-es256-nocache',
    limit: 'argon2id_verify/argon2id-default', limitText: 'argon2id verifications',
  },
  {
    id: 'issue-peer', what: `Peer: oidc-provider ${peerVersion}, ES256`, service: 'peer',
    limit: 'sign/ES256', limitText: 'ES256 signs (ours, josekit)',
  },
  {
    id: 'writes', what: 'Protected write `PUT /players/squadnumber/{n}`, valid token (204)', service: 'resource-api',
    limit: 'verify/ES256', limitText: 'ES256 verifications',
  },
  {
    id: 'reject-no-token', what: 'Rejection: no token (401)', service: 'resource-api',
  },
  {
    id: 'reject-malformed', what: 'Rejection: malformed token (401)', service: 'resource-api',
  },
  {
    id: 'reject-forged', what: 'Rejection: well-formed token, forged signature (401)', service: 'resource-api',
    limit: 'verify_forged/ES256', limitText: 'ES256 forged-signature checks',
  },
  {
    id: 'read-players', what: 'Anonymous read `GET /players` (26 players)', service: 'resource-api',
  },
];

function limitCell(spec, leg) {
  if (!spec.limit) return 'n/a (no signature work)';
  const l = limits[spec.limit];
  if (!l) return '—';
  return `${(leg.wrk.rps / l.per_sec).toFixed(2)} of ${int(l.per_sec)} ${spec.limitText}/s`;
}

// ---- targets --------------------------------------------------------------------------------
const checks = [];
function atLeast(what, measured, target, unit = '') {
  if (measured == null) return checks.push([what, '—', 'not measured']);
  const ok = measured >= target;
  checks.push([what, `${int(measured)}${unit}`,
    ok ? `met (+${(((measured - target) / target) * 100).toFixed(0)} %)` : `**missed by ${(((target - measured) / target) * 100).toFixed(0)} %**`]);
}
function below(what, measured, target, fmt) {
  if (measured == null) return checks.push([what, '—', 'not measured']);
  const ok = measured < target;
  checks.push([what, fmt(measured),
    ok ? `met (${(((target - measured) / target) * 100).toFixed(0)} % under)` : `**missed by ${(((measured - target) / target) * 100).toFixed(0)} %**`]);
}
const rps = (id) => legs[id]?.wrk.rps;
atLeast('ES256 tokens/s ≥ 15,000', rps('issue-auth-es256'), 15000, '/s');
if (rps('issue-auth-es256') != null && rps('issue-peer') != null) {
  const r = rps('issue-auth-es256') / rps('issue-peer');
  checks.push(['ES256 tokens/s ≥ 3× the peer (same run)', `${r.toFixed(2)}×`,
    r >= 3 ? `met (+${(((r - 3) / 3) * 100).toFixed(0)} %)` : `**missed by ${(((3 - r) / 3) * 100).toFixed(0)} %**`]);
} else {
  checks.push(['ES256 tokens/s ≥ 3× the peer (same run)', '—', 'not measured']);
}
below('ES256 issuance p99 < 15 ms (64 connections)', legs['issue-auth-es256']?.wrk.lat_p99_us, 15000, ms);
for (const id of ['issue-auth-es256', 'issue-auth-eddsa', 'issue-auth-es256-nocache']) {
  if (legs[id]) {
    const e = errors(legs[id]).total;
    checks.push([`errors = 0 (${id})`, int(e), e === 0 ? 'met' : '**missed**']);
  }
}
atLeast('protected writes ≥ 3,000/s', rps('writes'), 3000, '/s');
atLeast('rejections, no token ≥ 30,000/s', rps('reject-no-token'), 30000, '/s');
atLeast('rejections, malformed token ≥ 30,000/s', rps('reject-malformed'), 30000, '/s');
atLeast('rejections, forged signature ≥ 8,000/s', rps('reject-forged'), 8000, '/s');
for (const id of ['writes', 'reject-no-token', 'reject-malformed', 'reject-forged', 'read-players']) {
  if (legs[id]) {
    const e = errors(legs[id]).total;
    checks.push([`errors = 0 (${id})`, int(e), e === 0 ? 'met' : '**missed**']);
  }
}
const ours = ['auth-es256', 'auth-eddsa', 'auth-es256-nocache', 'resource-api'];
const endOfLoad = (name) => {
  const ends = Object.values(legs).filter((l) => l.service === name).map((l) => l.rss_end_kb);
  return ends.length ? Math.max(...ends) : null;
};
for (const name of ours) {
  const s = services[name];
  if (!s) continue;
  below(`${name}: RSS idle < 40 MB`, s.rss_idle_kb, 40 * 1024, mb);
  below(`${name}: RSS at the end of load < 100 MB`, endOfLoad(name), 100 * 1024, mb);
  below(`${name}: ready < 1 s (fresh SQLite, median)`, s.ready_ms, 1000, (v) => `${int(v)} ms`);
}

// ---- the document ---------------------------------------------------------------------------
const out = [];
const p = (s = '') => out.push(s);
const started = run.started ? run.started.replace('T', ' ').replace('Z', ' UTC') : 'unknown';
p('# Benchmark results');
p();
p(`Written by \`make bench\` (\`bench/run.sh\`) on ${started}; how to read it: [README.md](README.md).`);
p('Figures from one run on a shared machine: compare the ratios within this file, not absolute');
p('figures across runs.');
p();
p(`- **Machine**: ${machine.nproc} cores (${machine.cpu}), ${machine.memGiB} GiB memory, ${machine.kernel}.`);
p(`- **Load**: ${versions.wrk}, on the same machine, ${run.threads} threads, ${run.connections} connections,`);
p(`  ${run.warmup_s} s warm-up then ${run.duration_s} s measured per leg, 127.0.0.1 only, HTTP/1.1 keep-alive.`);
p(`- **Versions**: ${versions.rustc}; workspace at ${versions.commit}; Node.js ${versions.node};`);
p(`  oidc-provider ${versions.oidcProvider}; ${versions.openssl}.`);
p(`- **Servers**: release builds, fresh SQLite databases, default settings but for the bind address;`);
p(`  logs at ${run.rust_log ? `RUST_LOG=${run.rust_log}` : 'their default filters'} into a pipe; RUST_BACKTRACE unset for them (as in`);
p('  production; see README.md).');
p();

const es = legs['issue-auth-es256'];
const peer = legs['issue-peer'];
p('## Side by side: token issuance');
p();
p('`POST /auth/token` (peer: `POST /token`), `grant_type=client_credentials&scope=players:write`,');
p('`client_secret_basic`; each answer is a new ES256 JWT access token (RFC 9068) for `players-api`.');
p();
if (es && peer) {
  const se = services['auth-es256'] ?? {};
  const sp = services.peer ?? {};
  p(`| | auth-server | oidc-provider ${peerVersion} | ours / peer |`);
  p('|---|---:|---:|---:|');
  p(`| tokens/s | ${int(es.wrk.rps)} | ${int(peer.wrk.rps)} | **${ratio(es.wrk.rps, peer.wrk.rps)}** |`);
  p(`| latency p50 | ${ms(es.wrk.lat_p50_us)} | ${ms(peer.wrk.lat_p50_us)} | ${ratio(es.wrk.lat_p50_us, peer.wrk.lat_p50_us)} |`);
  p(`| latency p99 | ${ms(es.wrk.lat_p99_us)} | ${ms(peer.wrk.lat_p99_us)} | ${ratio(es.wrk.lat_p99_us, peer.wrk.lat_p99_us)} |`);
  p(`| errors | ${errorText(es)} | ${errorText(peer)} | |`);
  p(`| server CPU per token | ${usPer(es.server_cpu_s, es.wrk.requests)} | ${usPer(peer.server_cpu_s, peer.wrk.requests)} | ${ratio(es.server_cpu_s / es.wrk.requests, peer.server_cpu_s / peer.wrk.requests)} |`);
  p(`| RSS idle | ${mb(se.rss_idle_kb)} | ${mb(sp.rss_idle_kb)} | ${ratio(se.rss_idle_kb, sp.rss_idle_kb)} |`);
  p(`| RSS at the end of the load | ${mb(es.rss_end_kb)} | ${mb(peer.rss_end_kb)} | ${ratio(es.rss_end_kb, peer.rss_end_kb)} |`);
  p(`| ready after start (median) | ${int(se.ready_ms)} ms | ${int(sp.ready_ms)} ms | ${ratio(se.ready_ms, sp.ready_ms)} |`);
  p();
  p('For latency, CPU, memory and start-up, below 1× means ours is smaller.');
  p();
  p('The peer is one Node.js process with its in-memory adapter and a plain-text secret comparison;');
  p('ours keeps clients and keys in SQLite and checks an argon2id hash (remembered once verified).');
  p('Its start-up time is to its discovery document answering 200 (it has no readiness endpoint).');
} else {
  p('(the peer was not run)');
}
p();

p('## Every leg');
p();
p('Requests/s and latency as wrk saw them; errors are socket errors, time-outs and unexpected');
p('statuses (any non-2xx/3xx; for rejections, anything but 401). *Server CPU per request* is the');
p('server process\'s user+system time over the leg divided by the requests (steadier than');
p('requests/s on a busy machine). *Of the in-process limit* divides requests/s by what one core');
p('does in-process for the crypto that request needs (table below).');
p();
p('| leg | requests/s | p50 | p99 | errors | server CPU per request | of the in-process limit (one core) | RSS at end |');
p('|---|---:|---:|---:|---:|---:|---|---:|');
for (const spec of LEGS) {
  const leg = legs[spec.id];
  if (!leg) continue;
  p(`| ${spec.what} | ${int(leg.wrk.rps)} | ${ms(leg.wrk.lat_p50_us)} | ${ms(leg.wrk.lat_p99_us)} | ${errorText(leg)} | ${usPer(leg.server_cpu_s, leg.wrk.requests)} | ${limitCell(spec, leg)} | ${mb(leg.rss_end_kb)} |`);
}
p();

p('## The physical limit: in-process, one core');
p();
p('`cargo run --release -p auth-server --example crypto_limit`: signing through the server\'s own');
p('key type (header, claims JSON, signature), verifying with a josekit verifier built once per key.');
p();
p('| operation | per second | per operation |');
p('|---|---:|---:|');
const LIMIT_NAMES = {
  'sign/ES256': 'sign an access token, ES256',
  'verify/ES256': 'verify it, ES256',
  'verify_forged/ES256': 'reject a forged signature, ES256',
  'sign/EdDSA': 'sign an access token, EdDSA (Ed25519)',
  'verify/EdDSA': 'verify it, EdDSA',
  'verify_forged/EdDSA': 'reject a forged signature, EdDSA',
  'argon2id_verify/argon2id-default': 'verify a client secret, argon2id (crate defaults: 19 MiB, t=2)',
};
for (const [key, l] of Object.entries(limits)) {
  p(`| ${LIMIT_NAMES[key] ?? key} | ${int(l.per_sec)} | ${(l.ns_per_op / 1000).toFixed(1)} µs |`);
}
p();

p('## Memory and start-up');
p();
p('RSS is VmRSS from /proc/PID/status: idle is 1 s after ready; at the end of the load is the');
p('largest reading right after any of the service\'s legs; the peak is VmHWM at stop. Ready is the');
p('time from starting the process to the first 200 from `/health/ready` (polled every ~5 ms), each');
p('time with a new SQLite database (created, migrated, seeded, a signing key generated, the client');
p('hashed): the median of several starts, each start in brackets (one start can wait on the disk).');
p();
p('| service | ready after start | RSS idle | RSS at the end of the load | peak RSS |');
p('|---|---|---:|---:|---:|');
const readyText = (s) => `${int(s.ready_ms)} ms${s.ready_samples_ms?.length > 1 ? ` (${s.ready_samples_ms.map(int).join(', ')})` : ''}`;
const SERVICE_NAMES = {
  'auth-es256': 'auth-server, ES256',
  'auth-eddsa': 'auth-server, EdDSA',
  'auth-es256-nocache': 'auth-server, ES256, cache off',
  'resource-api': 'resource-api (players)',
  peer: `peer: oidc-provider ${peerVersion}`,
};
for (const [name, s] of Object.entries(services)) {
  p(`| ${SERVICE_NAMES[name] ?? name} | ${readyText(s)} | ${mb(s.rss_idle_kb)} | ${mb(endOfLoad(name))} | ${mb(s.rss_hwm_kb)} |`);
}
p();

p('## Targets (issue 7)');
p();
p('| target | measured | |');
p('|---|---:|---|');
for (const [what, measured, verdict] of checks) p(`| ${what} | ${measured} | ${verdict} |`);
p();

p('## How busy the machine was');
p();
p('CPU time during each measured leg, in cores (2 = the whole machine): the server, wrk, and');
p('everything else (other builds and tests on a shared machine). A leg where *others* is high was');
p('measured on a machine that was not ours alone.');
p();
p('| leg | server | wrk | others | idle |');
p('|---|---:|---:|---:|---:|');
for (const spec of LEGS) {
  const leg = legs[spec.id];
  if (!leg) continue;
  const secs = leg.machine_total_s / Number(machine.nproc || 1);
  const cores = (x) => (secs > 0 ? (x / secs).toFixed(2) : '—');
  const others = Math.max(0, leg.machine_busy_s - leg.server_cpu_s - leg.wrk_cpu_s);
  const idle = Math.max(0, leg.machine_total_s - leg.machine_busy_s);
  p(`| ${spec.id} | ${cores(leg.server_cpu_s)} | ${cores(leg.wrk_cpu_s)} | ${cores(others)} | ${cores(idle)} |`);
}
p();

const text = `${out.join('\n')}`;
writeFileSync(outputFile, text);
