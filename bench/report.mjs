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
const runEnd = lines.find((l) => l.kind === 'run_end') ?? {};
const legs = Object.fromEntries(lines.filter((l) => l.kind === 'leg').map((l) => [l.id, l]));
const services = {};
for (const l of lines.filter((x) => x.kind === 'service' || x.kind === 'service_end')) {
  services[l.name] = { ...services[l.name], ...l };
}
const limits = {};
for (const l of lines.filter((x) => x.kind === 'limit')) limits[`${l.m.op}/${l.m.alg}`] = l.m;
const tokenChecks = Object.fromEntries(lines.filter((l) => l.kind === 'token_check').map((l) => [l.name, l.check]));
const outages = lines.filter((l) => l.kind === 'outage');
const scales = lines.filter((l) => l.kind === 'scale');
const skipped = lines.filter((l) => l.kind === 'skipped');
const maxStale = lines.find((l) => l.kind === 'setting' && l.key === 'max_stale_secs');

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
  postgres: cmd('psql', ['--version']),
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
const times = (r, digits = 2) => (r == null || !Number.isFinite(r) ? '—' : `${r.toFixed(digits)}×`);
const ratio = (a, b) => (a == null || b == null || b === 0 ? '—' : times(a / b));

// Answers that count as success: 2xx, or the expected status of a rejection leg.
function okCount(leg) {
  const w = leg.wrk;
  return w.expect == null ? w.requests - w.non_2xx_3xx : w.expected;
}
const okRate = (leg) => (leg ? okCount(leg) / leg.wrk.duration_s : null);
// Server CPU (the process and its children: a cluster's primary and workers) per success.
const cpuPerOk = (leg) => (leg && okCount(leg) > 0 ? (leg.server_cpu_s * 1e6) / okCount(leg) : null);
const us = (v) => (v == null ? '—' : `${v.toFixed(0)} µs`);

function errors(leg) {
  const w = leg.wrk;
  const socket = w.connect_errors + w.read_errors + w.write_errors + w.timeouts;
  // With an expected status (rejections), an error is any other answer; else wrk's non-2xx/3xx.
  const wrong = w.expect == null ? w.non_2xx_3xx : w.unexpected;
  return { total: socket + wrong, socket, wrong, last: w.last_unexpected };
}
function statusesText(leg) {
  const s = leg.wrk.statuses ?? {};
  const other = Object.entries(s).filter(([code]) => !code.startsWith('2'));
  return other.length ? ` (${other.map(([code, n]) => `${int(n)} × ${code}`).join(', ')})` : '';
}
function errorText(leg) {
  const e = errors(leg);
  if (e.total === 0) return '0';
  const parts = [];
  if (e.wrong) {
    parts.push(leg.wrk.expect == null
      ? `${int(e.wrong)} non-2xx${statusesText(leg)}`
      : `${int(e.wrong)} not ${leg.wrk.expect}${e.last ? ` (e.g. ${e.last})` : ''}`);
  }
  if (e.socket) parts.push(`${int(e.socket)} socket/timeout`);
  return `**${parts.join(', ')}**`;
}

// ---- the legs -------------------------------------------------------------------------------
const LEGS = [
  { id: 'issue-auth-es256', what: 'Token issuance, ES256, SQLite', limit: 'sign/ES256', limitText: 'ES256 signs' },
  { id: 'issue-ceiling', what: 'Ceiling: minimal poem endpoint, same request, same ES256 signing', limit: 'sign/ES256', limitText: 'ES256 signs' },
  { id: 'issue-peer-cluster', what: `Peer: oidc-provider ${peerVersion}, ES256, ${run.peer_workers ?? 2}-worker cluster`, limit: 'sign/ES256', limitText: 'ES256 signs (ours, josekit)' },
  { id: 'issue-peer', what: `Peer: oidc-provider ${peerVersion}, ES256, one process`, limit: 'sign/ES256', limitText: 'ES256 signs (ours, josekit)' },
  { id: 'issue-auth-eddsa', what: 'Token issuance, EdDSA, SQLite', limit: 'sign/EdDSA', limitText: 'EdDSA signs' },
  { id: 'issue-auth-es256-nocache', what: 'Token issuance, ES256, SQLite, verified-secret cache off', limit: 'argon2id_verify/argon2id-default', limitText: 'argon2id verifications' },
  { id: 'issue-auth-pg', what: 'Token issuance, ES256, PostgreSQL', limit: 'sign/ES256', limitText: 'ES256 signs' },
  { id: 'scale-sqlite', what: 'Token issuance, ES256, SQLite, 100,000 clients registered, load over many', limit: 'sign/ES256', limitText: 'ES256 signs' },
  { id: 'scale-postgres', what: 'Token issuance, ES256, PostgreSQL, 100,000 clients registered, load over many', limit: 'sign/ES256', limitText: 'ES256 signs' },
  { id: 'outage-refuse', what: 'Outage: ES256 issuance on PostgreSQL, database refused for part of the run', limit: 'sign/ES256', limitText: 'ES256 signs' },
  { id: 'outage-hang', what: 'Outage: ES256 issuance on PostgreSQL, database hanging for part of the run', limit: 'sign/ES256', limitText: 'ES256 signs' },
  { id: 'outage-blackhole', what: 'Outage: ES256 issuance on PostgreSQL, database silenced for part of the run', limit: 'sign/ES256', limitText: 'ES256 signs' },
  { id: 'issue-auth-es256-pkjwt', what: 'Token issuance, ES256, SQLite, `private_key_jwt` (an ES256 assertion, its `jti` recorded)', limit: 'verify/ES256', limitText: 'ES256 verifications' },
  { id: 'writes', what: 'Protected write `PUT /players/squadnumber/{n}`, valid token (204)', limit: 'verify/ES256', limitText: 'ES256 verifications' },
  { id: 'writes-dpop', what: 'Protected write, DPoP-bound token and a new proof each (204)', limit: 'verify/ES256', limitText: 'ES256 verifications' },
  { id: 'reject-no-token', what: 'Rejection: no token (401)' },
  { id: 'reject-malformed', what: 'Rejection: malformed token (401)' },
  { id: 'reject-forged', what: 'Rejection: well-formed token, forged signature (401)', limit: 'verify_forged/ES256', limitText: 'ES256 forged-signature checks' },
  { id: 'read-players', what: 'Anonymous read `GET /players` (26 players)' },
];
for (const scale of scales) {
  const spec = LEGS.find((l) => l.id === scale.leg);
  if (spec) spec.what = spec.what.replace('100,000 clients registered, load over many', `${int(scale.clients)} clients registered, load over ${int(scale.spread)} of them`);
}

function limitCell(spec, leg) {
  if (!spec.limit) return 'n/a (no signature work)';
  const l = limits[spec.limit];
  if (!l) return '—';
  return `${(okRate(leg) / l.per_sec).toFixed(2)} of ${int(l.per_sec)} ${spec.limitText}/s`;
}

// ---- targets --------------------------------------------------------------------------------
// [target, measured, verdict]; the verdict is "met" or "**not met**", with the margin.
const pct = (x) => `${Math.abs(x * 100).toFixed(0)} %`;
const targets14 = [];
function atLeast(list, what, measured, target, fmt) {
  if (measured == null) return list.push([what, '—', 'not measured']);
  const ok = measured >= target;
  return list.push([what, fmt(measured), ok ? `met (+${pct((measured - target) / target)})` : `**not met** (${pct((target - measured) / target)} short)`]);
}
function atMost(list, what, measured, target, fmt) {
  if (measured == null) return list.push([what, '—', 'not measured']);
  const ok = measured <= target;
  return list.push([what, fmt(measured), ok ? `met (${pct((target - measured) / target)} under)` : `**not met** (${pct((measured - target) / target)} over)`]);
}
function equals(list, what, measured, ok, text) {
  if (measured == null) return list.push([what, '—', 'not measured']);
  return list.push([what, text ?? String(measured), ok ? 'met' : '**not met**']);
}
const reported = (list, what, measured) => list.push([what, measured, 'reported (the issue sets no figure)']);

const es = legs['issue-auth-es256'];
const ceiling = legs['issue-ceiling'];
const cluster = legs['issue-peer-cluster'];
const single = legs['issue-peer'];
const pg = legs['issue-auth-pg'];
const perSec = (v) => `${int(v)}/s`;

atLeast(targets14, 'ES256 client-credentials issuance ≥ 20,000 tokens/s (SQLite, 64 connections)', okRate(es), 20000, perSec);
atLeast(targets14, 'Issuance ≥ 0.75 of the ceiling leg (same run)', es && ceiling ? okRate(es) / okRate(ceiling) : null, 0.75, (v) => `${v.toFixed(2)} (${int(okRate(es))} / ${int(okRate(ceiling))})`);
atLeast(targets14, `Tokens/s ≥ 4× the peer as a ${run.peer_workers ?? 2}-worker cluster (same run)`, es && cluster ? okRate(es) / okRate(cluster) : null, 4, (v) => `${v.toFixed(2)}× (${int(okRate(es))} / ${int(okRate(cluster))})`);
atLeast(targets14, 'Server CPU per token ≥ 3× less than the peer cluster (peer µs / ours µs)', es && cluster ? cpuPerOk(cluster) / cpuPerOk(es) : null, 3, (v) => `${v.toFixed(2)}× (${us(cpuPerOk(cluster))} / ${us(cpuPerOk(es))})`);
atMost(targets14, 'Issuance p99 ≤ 10 ms at 64 connections (ES256, SQLite)', es?.wrk.lat_p99_us, 10000, ms);
atMost(targets14, 'auth-server resident memory idle ≤ 30 MB (ES256, SQLite, 1 s after ready)', services['auth-es256']?.rss_idle_kb, 30 * 1024, mb);
for (const o of outages) {
  const leg = legs[o.leg];
  if (!leg) continue;
  const e = errors(leg);
  equals(targets14, `Outage (${o.mode}): non-200 client-credentials answers = 0 (${o.duration_s} s at 64 connections, database away ${o.down_s} s)`,
    e.total, e.total === 0, `${int(e.total)}${e.total ? statusesText(leg) : ''}${e.socket ? ` incl. ${int(e.socket)} socket/timeout` : ''} of ${int(leg.wrk.requests + e.socket)}`);
  const p = o.password_during;
  equals(targets14, `Outage (${o.mode}): a password-grant request during the outage gets a quick 503 temporarily_unavailable (≤ 100 ms)`,
    p.status, p.status === 503 && p.error === 'temporarily_unavailable' && p.ms <= 100,
    `${p.status || 'no answer'}${p.error && p.error !== '-' ? ` ${p.error}` : ''} in ${int(p.ms)} ms`);
  // In service: a 200 within Kubernetes' default probe time-out (1 s); a slower 200 fails the probe.
  equals(targets14, `Outage (${o.mode}): /health/ready keeps the instance in service during the outage (200 within 1 s, the default probe time-out)`,
    o.ready_during.status, o.ready_during.status === 200 && o.ready_during.ms <= 1000,
    `${o.ready_during.status || 'no answer'} in ${int(o.ready_during.ms)} ms`);
  equals(targets14, `Outage (${o.mode}): everything recovers on its own (token and password grant 200 right after)`,
    o.token_after.status, o.token_after.status === 200 && o.password_after.status === 200,
    `token ${o.token_after.status}, password grant ${o.password_after.status}`);
  reported(targets14, `Outage (${o.mode}): p99 across the run with the outage`, `${ms(leg.wrk.lat_p99_us)} (max ${ms(leg.wrk.lat_max_us)})`);
}
for (const s of scales) {
  const service = services[s.service];
  const leg = legs[s.leg];
  atMost(targets14, `Scale (${s.backend}): ready ≤ 2 s after start with ${int(s.clients)} clients registered (median)`, service?.ready_ms, 2000, (v) => `${int(v)} ms`);
  atMost(targets14, `Scale (${s.backend}): resident memory idle ≤ 60 MB with ${int(s.clients)} clients registered`, service?.rss_idle_kb, 60 * 1024, mb);
  const base = s.backend === 'sqlite' ? es : pg;
  reported(targets14, `Scale (${s.backend}): issuance spread over ${int(s.spread)} clients`, leg
    ? `${int(okRate(leg))}/s${base ? ` (${ratio(okRate(leg), okRate(base))} of one client's, same backend)` : ''}, p99 ${ms(leg.wrk.lat_p99_us)}`
    : '—');
}
if (pg) reported(targets14, 'Issuance on PostgreSQL (ES256, 64 connections)', `${int(okRate(pg))}/s, p99 ${ms(pg.wrk.lat_p99_us)}${es ? ` (${ratio(okRate(pg), okRate(es))} of SQLite's)` : ''}`);
for (const id of ['issue-auth-es256', 'issue-ceiling', 'issue-peer-cluster', 'issue-peer', 'issue-auth-pg', 'scale-sqlite', 'scale-postgres']) {
  if (!legs[id]) continue;
  const e = errors(legs[id]).total;
  equals(targets14, `errors = 0 (${id})`, e, e === 0, int(e));
}

// Issue 7's targets, kept so a regression shows.
const checks = [];
const rps = (id) => (legs[id] ? okRate(legs[id]) : null);
atLeast(checks, 'ES256 tokens/s ≥ 15,000', rps('issue-auth-es256'), 15000, perSec);
atLeast(checks, 'ES256 tokens/s ≥ 3× the one-process peer (same run)', es && single ? okRate(es) / okRate(single) : null, 3, (v) => `${v.toFixed(2)}×`);
atMost(checks, 'ES256 issuance p99 < 15 ms (64 connections)', es?.wrk.lat_p99_us, 15000, ms);
for (const id of ['issue-auth-eddsa', 'issue-auth-es256-nocache']) {
  if (legs[id]) {
    const e = errors(legs[id]).total;
    equals(checks, `errors = 0 (${id})`, e, e === 0, int(e));
  }
}
atLeast(checks, 'protected writes ≥ 3,000/s', rps('writes'), 3000, perSec);
atLeast(checks, 'rejections, no token ≥ 30,000/s', rps('reject-no-token'), 30000, perSec);
atLeast(checks, 'rejections, malformed token ≥ 30,000/s', rps('reject-malformed'), 30000, perSec);
atLeast(checks, 'rejections, forged signature ≥ 8,000/s', rps('reject-forged'), 8000, perSec);
for (const id of ['writes', 'reject-no-token', 'reject-malformed', 'reject-forged', 'read-players']) {
  if (legs[id]) {
    const e = errors(legs[id]).total;
    equals(checks, `errors = 0 (${id})`, e, e === 0, int(e));
  }
}
const endOfLoad = (name) => {
  const ends = Object.values(legs).filter((l) => l.service === name).map((l) => l.rss_end_kb);
  return ends.length ? Math.max(...ends) : null;
};
for (const name of ['auth-es256', 'auth-eddsa', 'auth-es256-nocache', 'resource-api']) {
  const s = services[name];
  if (!s) continue;
  atMost(checks, `${name}: RSS idle < 40 MB`, s.rss_idle_kb, 40 * 1024, mb);
  atMost(checks, `${name}: RSS at the end of load < 100 MB`, endOfLoad(name), 100 * 1024, mb);
  atMost(checks, `${name}: ready < 1 s (fresh SQLite, median)`, s.ready_ms, 1000, (v) => `${int(v)} ms`);
}

// ---- the document ---------------------------------------------------------------------------
const out = [];
const p = (s = '') => out.push(s);
// A table: the first column left, the others right-aligned, but a verdict column (one headed
// '') left-aligned.
const table = (head, rows) => {
  p(`| ${head.join(' | ')} |`);
  p(`|${head.map((h, i) => (i === 0 || h === '' ? '---' : '---:')).join('|')}|`);
  for (const r of rows) p(`| ${r.join(' | ')} |`);
};
const started = run.started ? run.started.replace('T', ' ').replace('Z', ' UTC') : 'unknown';
p('# Benchmark results');
p();
p(`Written by \`make bench\` (\`bench/run.sh\`) on ${started}${runEnd.wall_s ? `, ${int(runEnd.wall_s)} s of legs` : ''}; how to read it: [README.md](README.md).`);
p('Figures from one run on a shared machine: compare the ratios within this file, not absolute');
p('figures across runs.');
p();
p(`- **Machine**: ${machine.nproc} cores (${machine.cpu}), ${machine.memGiB} GiB memory, ${machine.kernel}.`);
p(`- **Load**: ${versions.wrk}, on the same machine, ${run.threads} threads, ${run.connections} connections,`);
p(`  ${run.warmup_s} s warm-up then ${run.duration_s} s measured per leg, 127.0.0.1 only, HTTP/1.1 keep-alive.`);
p(`- **Versions**: ${versions.rustc}; workspace at ${versions.commit}; Node.js ${versions.node};`);
p(`  oidc-provider ${versions.oidcProvider}; ${versions.openssl}; ${versions.postgres}.`);
p(`- **Servers**: release builds, fresh databases, default settings but for the bind address;`);
p(`  logs at ${run.rust_log ? `RUST_LOG=${run.rust_log}` : 'their default filters'} into a pipe; RUST_BACKTRACE unset for them (as in`);
p('  production; see README.md).');
if (run.groups && run.groups.trim() !== 'issuance ceiling peer api secretless eddsa nocache postgres outage scale') {
  p(`- **Partial run**: only ${run.groups.trim().split(/\s+/).join(', ')} (BENCH_ONLY / BENCH_SKIP_PEER / BENCH_SKIP_POSTGRES).`);
}
for (const s of skipped) p(`- **Skipped**: ${s.what}: ${s.why}.`);
p();

p('## Targets (issue 14)');
p();
p('Each target of the issue, measured in this run. *Reported* rows are figures the issue asks');
p('for without setting a number.');
p();
table(['target', 'measured', ''], targets14);
p();

p('## Token issuance side by side');
p();
p('`POST /auth/token` (peer: `POST /token`), `grant_type=client_credentials&scope=players:write`,');
p('`client_secret_basic`; each answer is a new ES256 JWT access token (RFC 9068) for `players-api`.');
p('The ceiling is `bench/ceiling`: a minimal poem endpoint that parses the same request and signs');
p('the same claims with the same key type, and nothing else (no database, no hashing, no');
p('middleware): the HTTP + signing limit of this machine with wrk beside it.');
p();
{
  const cols = [
    ['auth-server, SQLite', es, 'auth-es256'],
    ['auth-server, PostgreSQL', pg, 'auth-pg'],
    ['ceiling', ceiling, 'ceiling'],
    [`peer, ${run.peer_workers ?? 2}-worker cluster`, cluster, 'peer-cluster'],
    ['peer, one process', single, 'peer'],
  ].filter(([, leg]) => leg);
  if (cols.length) {
    const row = (name, f) => [name, ...cols.map(([, leg, svc]) => f(leg, services[svc] ?? {}))];
    table([' ', ...cols.map(([name]) => name)], [
      row('tokens/s', (l) => int(okRate(l))),
      row('latency p50', (l) => ms(l.wrk.lat_p50_us)),
      row('latency p99', (l) => ms(l.wrk.lat_p99_us)),
      row('errors', (l) => errorText(l)),
      row('server CPU per token', (l) => us(cpuPerOk(l))),
      row('RSS idle', (_, s) => mb(s.rss_idle_kb)),
      row('RSS at the end of the load', (l) => mb(l.rss_end_kb)),
      row('ready after start (median)', (_, s) => (s.ready_ms == null ? '—' : `${int(s.ready_ms)} ms`)),
    ]);
    p();
    const ratios = [];
    if (es && ceiling) ratios.push(['ours (SQLite) / ceiling, tokens/s', times(okRate(es) / okRate(ceiling)), 'the target is ≥ 0.75']);
    if (pg && ceiling) ratios.push(['ours (PostgreSQL) / ceiling, tokens/s', times(okRate(pg) / okRate(ceiling)), '']);
    if (es && cluster) ratios.push(['ours / peer cluster, tokens/s', times(okRate(es) / okRate(cluster)), 'the target is ≥ 4×']);
    if (es && single) ratios.push(['ours / peer one process, tokens/s', times(okRate(es) / okRate(single)), '']);
    if (es && cluster) ratios.push(['peer cluster / ours, server CPU per token', times(cpuPerOk(cluster) / cpuPerOk(es)), 'the target is ≥ 3×']);
    if (es && single) ratios.push(['peer one process / ours, server CPU per token', times(cpuPerOk(single) / cpuPerOk(es)), '']);
    if (es && ceiling) ratios.push(['ours / ceiling, server CPU per token', times(cpuPerOk(es) / cpuPerOk(ceiling)), 'what being a service costs per token']);
    if (cluster && single) ratios.push(['peer cluster / peer one process, tokens/s', times(okRate(cluster) / okRate(single)), '']);
    if (ratios.length) {
      table(['ratio (same run)', 'value', ''], ratios);
      p();
    }
  } else {
    p('(no issuance leg in this run)');
    p();
  }
  const ours = tokenChecks['auth-es256'];
  const ceil = tokenChecks.ceiling;
  if (ours && ceil) {
    const same = JSON.stringify(ours.header) === JSON.stringify(ceil.header) && JSON.stringify(ours.claims) === JSON.stringify(ceil.claims);
    p(`Before the load, one token from each was checked (signature verified against the published key): ours has header ${ours.header.join(', ')} and claims ${ours.claims.join(', ')};`);
    p(same ? 'the ceiling\'s has exactly the same names.' : `**the ceiling's differs**: header ${ceil.header.join(', ')}, claims ${ceil.claims.join(', ')} (update bench/ceiling so it signs what ours signs).`);
    p();
  }
  p('Server CPU is the user+system time of the server\'s processes (for the cluster: the primary and');
  p('its workers) over the measured window, divided by the 2xx answers. The peer keeps everything');
  p('in its in-memory adapter and compares the client secret as plain text; ours keeps the clients');
  p('in use in memory (read from its database once, kept true by its change check) and checks an');
  p('argon2id hash (remembered once verified).');
  p();
}

if (outages.length) {
  p('## The database outage (PostgreSQL through `bench/pgproxy.py`)');
  p();
  const o0 = outages[0];
  p(`An auth-server on PostgreSQL through a TCP proxy; ${run.connections} connections ask for client-credentials tokens for ${o0.duration_s} s;`);
  p(`the proxy makes the database unreachable for ${o0.down_s} s in the middle: every proxied connection is cut (reset) and`);
  p('new connections are **refused** (closed port, like a stopped server) or **hang** (accepted, never answered, like a');
  p('partition), by mode. The machine\'s PostgreSQL itself is never touched. Half-way through the outage one');
  p('password-grant request and one `/health/ready` request are timed; right after the load, a token and a password');
  p(`grant are asked for again. wrk's time-out is ${o0.wrk_timeout_s} s (answers slower than that count as socket/timeout).`);
  const stale = maxStale
    ? maxStale.known
      ? maxStale.asked ? `\`max_stale_secs = ${maxStale.asked}\` (BENCH_MAX_STALE_SECS)` : 'the server\'s default `max_stale_secs`'
      : '**this auth-server build has no `max_stale_secs`** (nothing passed)'
    : '—';
  p(`Setting: ${stale}.`);
  p();
  const rows = (f) => outages.map((o) => f(o, legs[o.leg]));
  const head = [' ', ...outages.map((o) => o.mode)];
  const r = (name, f) => [name, ...rows(f)];
  table(head, [
    r('client-credentials answers', (o, l) => int(l.wrk.requests)),
    r('200', (o, l) => int(l.wrk.statuses?.['200'] ?? okCount(l))),
    r('non-200 answers', (o, l) => {
      const other = Object.entries(l.wrk.statuses ?? {}).filter(([c]) => c !== '200');
      const n = other.reduce((a, [, v]) => a + v, 0);
      return n ? `**${int(n)}** (${other.map(([c, v]) => `${int(v)} × ${c}`).join(', ')})` : '0';
    }),
    r('socket errors / time-outs', (o, l) => int(errors(l).socket)),
    r('latency p50', (o, l) => ms(l.wrk.lat_p50_us)),
    r('latency p99', (o, l) => ms(l.wrk.lat_p99_us)),
    r('latency max', (o, l) => ms(l.wrk.lat_max_us)),
    r('password grant before the outage', (o) => `${o.password_before.status} in ${int(o.password_before.ms)} ms`),
    r('password grant during the outage', (o) => `${o.password_during.status || 'no answer'}${o.password_during.error !== '-' ? ` ${o.password_during.error}` : ''} in ${int(o.password_during.ms)} ms`),
    r('`/health/ready` during the outage', (o) => `${o.ready_during.status || 'no answer'} in ${int(o.ready_during.ms)} ms`),
    r('its body', (o) => (o.ready_during.body ? `\`${o.ready_during.body.replaceAll('|', '\\|').replaceAll('`', "'")}\`` : '—')),
    r('token right after', (o) => String(o.token_after.status)),
    r('password grant right after', (o) => `${o.password_after.status} in ${int(o.password_after.ms)} ms`),
  ]);
  p();
  p('Answers per second (wall-clock seconds from the start of the measured run; *database* says');
  p('whether the proxy was down for any part of that second):');
  p();
  const timelines = outages.map((o) => {
    const leg = legs[o.leg];
    const t0 = Math.floor(leg.started_ms / 1000);
    const map = new Map((leg.wrk.timeline ?? []).map(([sec, ok, bad]) => [sec - t0, [ok, bad]]));
    const downFrom = o.down_ms / 1000 - t0;
    const downTo = o.up_ms / 1000 - t0;
    return { map, downFrom, downTo };
  });
  const last = Math.max(0, ...timelines.flatMap((t) => [...t.map.keys()]));
  const thead = ['second', ...outages.flatMap((o) => [`${o.mode}: 200`, `${o.mode}: other`, `${o.mode}: database`])];
  const trows = [];
  for (let sec = 0; sec <= last; sec += 1) {
    trows.push([String(sec), ...timelines.flatMap(({ map, downFrom, downTo }) => {
      const [ok, bad] = map.get(sec) ?? [0, 0];
      const down = sec + 1 > downFrom && sec < downTo;
      return [int(ok), bad ? `**${int(bad)}**` : '0', down ? '**down**' : 'up'];
    })]);
  }
  table(thead, trows);
  p();
}

if (legs['issue-auth-es256-pkjwt'] || legs['writes-dpop']) {
  p('## Clients without secrets: private_key_jwt and DPoP');
  p();
  p('Each next to its secret/bearer counterpart, same servers, same run. Every assertion and every');
  p('proof is single-use, so `bench/secretless.mjs` signs them beforehand (ES256) and wrk sends each');
  p('once (`LEG_REQUEST_FILE`). `private_key_jwt`: the server verifies the assertion against the');
  p('client\'s registered key and records its `jti` in `used_jtis` (one transaction per group of concurrent requests), where');
  p('a secret is checked against the verified-secret cache. DPoP: the API verifies the proof (a second');
  p('ES256 signature), its `ath`, `htu` and `iat`, and remembers its `jti`.');
  p();
  const pair = (name, a, b) => {
    const la = legs[a];
    const lb = legs[b];
    return [
      name,
      la ? int(okRate(la)) : '—',
      lb ? int(okRate(lb)) : '—',
      la && lb ? `${(okRate(lb) / okRate(la)).toFixed(2)}×` : '—',
      la && lb ? `${ms(la.wrk.lat_p99_us)} / ${ms(lb.wrk.lat_p99_us)}` : '—',
      la && lb ? `${us(cpuPerOk(la))} / ${us(cpuPerOk(lb))}` : '—',
      lb ? `${errorText(lb)}${lb.wrk.reused ? ` (${int(lb.wrk.reused)} pre-made requests sent twice)` : ''}` : '—',
    ];
  };
  table(
    [' ', 'secret / bearer, per s', 'without secret, per s', 'ratio', 'p99 (both)', 'server CPU per answer (both)', 'errors (without secret)'],
    [
      pair('issuance: `client_secret_basic` vs `private_key_jwt`', 'issue-auth-es256', 'issue-auth-es256-pkjwt'),
      pair('protected writes: Bearer vs DPoP', 'writes', 'writes-dpop'),
    ],
  );
  p();
}

if (scales.length) {
  p('## Scale: many registered clients');
  p();
  p('The clients are inserted directly (one transaction) after a first start created the schema: each a');
  p('copy of the bench client\'s row under another `client_id`, all with the same argon2id hash of one');
  p('secret (so the verified-secret cache answers for all of them after one verification: this leg');
  p('measures finding a client among many, not hashing). Then the server is started again on that');
  p('database (several times, to time start-up), and the load takes the clients in turn, evenly');
  p('spread over the table.');
  p();
  const head = [' ', ...scales.map((s) => s.backend)];
  const r = (name, f) => [name, ...scales.map((s) => f(s, legs[s.leg], services[s.service] ?? {}))];
  table(head, [
    r('clients in the table', (s) => int(s.clients)),
    r('insert (one transaction)', (s) => `${int(s.insert_ms)} ms`),
    r('ready after start (median)', (s, l, svc) => `${int(svc.ready_ms)} ms${svc.ready_samples_ms?.length > 1 ? ` (${svc.ready_samples_ms.map(int).join(', ')})` : ''}`),
    r('RSS idle', (s, l, svc) => mb(svc.rss_idle_kb)),
    r('clients the load uses', (s) => int(s.spread)),
    r('tokens/s', (s, l) => (l ? int(okRate(l)) : '—')),
    r('latency p99', (s, l) => (l ? ms(l.wrk.lat_p99_us) : '—')),
    r('errors', (s, l) => (l ? errorText(l) : '—')),
    r('server CPU per token', (s, l) => us(cpuPerOk(l))),
    r('tokens/s of one client, same backend, empty table', (s) => int(okRate(s.backend === 'sqlite' ? es : pg))),
    r('RSS at the end of the load', (s, l) => (l ? mb(l.rss_end_kb) : '—')),
  ]);
  p();
}

p('## Every leg');
p();
p('Answers/s (2xx, or the expected status for rejections) and latency as wrk saw them; errors are');
p('socket errors, time-outs and unexpected statuses. *Server CPU per answer* is the server\'s');
p('user+system time over the leg divided by those answers (steadier than answers/s on a busy');
p('machine). *Of the in-process limit* divides answers/s by what one core does in-process for the');
p('crypto that request needs (table below).');
p();
p('| leg | answers/s | p50 | p99 | errors | server CPU per answer | of the in-process limit (one core) | RSS at end |');
p('|---|---:|---:|---:|---:|---:|---|---:|');
for (const spec of LEGS) {
  const leg = legs[spec.id];
  if (!leg) continue;
  p(`| ${spec.what} | ${int(okRate(leg))} | ${ms(leg.wrk.lat_p50_us)} | ${ms(leg.wrk.lat_p99_us)} | ${errorText(leg)} | ${us(cpuPerOk(leg))} | ${limitCell(spec, leg)} | ${mb(leg.rss_end_kb)} |`);
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
p('RSS is VmRSS from /proc/PID/status (for the peer\'s cluster: the sum over its processes): idle is');
p('1 s after ready; at the end of the load is the largest reading right after any of the service\'s');
p('legs; the peak is VmHWM at stop (summed per process for the cluster). Ready is the time from');
p('starting the process to the first 200 from `/health/ready` (polled every ~5 ms), each time with a');
p('new database (created, migrated, seeded, a signing key generated, the client hashed) except for');
p('the scale services, restarted on their populated database: the median of several starts, each');
p('start in brackets (one start can wait on the disk).');
p();
p('| service | ready after start | RSS idle | RSS at the end of the load | peak RSS |');
p('|---|---|---:|---:|---:|');
const readyText = (s) => `${int(s.ready_ms)} ms${s.ready_samples_ms?.length > 1 ? ` (${s.ready_samples_ms.map(int).join(', ')})` : ''}`;
const SERVICE_NAMES = {
  'auth-es256': 'auth-server, ES256, SQLite',
  'auth-eddsa': 'auth-server, EdDSA, SQLite',
  'auth-es256-nocache': 'auth-server, ES256, SQLite, cache off',
  'auth-pg': 'auth-server, ES256, PostgreSQL',
  'auth-outage-refuse': 'auth-server, PostgreSQL through the proxy (refuse)',
  'auth-outage-hang': 'auth-server, PostgreSQL through the proxy (hang)',
  'auth-outage-blackhole': 'auth-server, PostgreSQL through the proxy (blackhole)',
  'auth-scale-sqlite': 'auth-server, SQLite, many clients (restart)',
  'auth-scale-postgres': 'auth-server, PostgreSQL, many clients (restart)',
  ceiling: 'ceiling (bench/ceiling)',
  'resource-api': 'resource-api (players)',
  peer: `peer: oidc-provider ${peerVersion}, one process`,
  'peer-cluster': `peer: oidc-provider ${peerVersion}, ${run.peer_workers ?? 2}-worker cluster`,
};
for (const [name, s] of Object.entries(services)) {
  p(`| ${SERVICE_NAMES[name] ?? name} | ${readyText(s)} | ${mb(s.rss_idle_kb)} | ${mb(endOfLoad(name))} | ${mb(s.rss_hwm_kb)} |`);
}
p();

p('## Targets (issue 7)');
p();
p('The earlier issue\'s targets, kept so that a regression shows.');
p();
table(['target', 'measured', ''], checks);
p();

p('## How busy the machine was');
p();
p('CPU time during each measured leg, in cores (2 = the whole machine): the server, wrk, and');
p('everything else (other builds and tests on a shared machine; for the PostgreSQL legs also');
p('PostgreSQL, and the proxy for the outage legs). A leg where *others* is high was measured on a');
p('machine that was not ours alone.');
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

writeFileSync(outputFile, `${out.join('\n')}`);
