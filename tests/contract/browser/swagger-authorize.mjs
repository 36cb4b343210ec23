// The players API's Swagger UI, used in a real browser the way a new user does after
// `make run`: open http://localhost:9001/docs, click "Authorize", give the development client,
// tick the players:write scope, authorize (Swagger UI POSTs to the auth-server's token endpoint
// on :9000 from the :9001 page: a cross-origin request with a CORS preflight), close the dialog,
// open POST /players, "Try it out", put a player in the body, "Execute", and see 201.
//
// run.sh starts both services with deploy/dev/*.toml (make run's settings) and runs this with
// node. Chromium is Debian's (/usr/bin/chromium), driven by playwright-core: Playwright's own
// browser downloads are never used. Environment (defaults are make run's):
//   DOCS_URL, API_URL, TOKEN_URL   where the page, the players API and the token endpoint are
//   CLIENT_ID, CLIENT_SECRET, SCOPE the client typed into the Authorize dialog
//   SQUAD_NUMBER                   a squad number free in the seeded squad (default 31)
//   CHROMIUM                       the browser binary (default /usr/bin/chromium)
//   WORK_DIR                       required: the browser profile and, on failure, a screenshot
// Exits 0 when Swagger UI shows 201 and the network saw the 201; otherwise prints the step that
// failed, what Swagger UI showed, the browser's console errors and the network log (preflights
// and CORS errors included; never a header value that carries a secret), and exits 1.

import { createRequire } from 'node:module';
import path from 'node:path';
import { chromium } from 'playwright-core';

const env = (name, fallback) => process.env[name] || fallback;
const DOCS_URL = env('DOCS_URL', 'http://localhost:9001/docs');
const API_URL = env('API_URL', 'http://localhost:9001');
const TOKEN_URL = env('TOKEN_URL', 'http://localhost:9000/auth/token');
const CLIENT_ID = env('CLIENT_ID', 'foobarbaz');
const CLIENT_SECRET = env('CLIENT_SECRET', 'dev-secret-change-me');
const SCOPE = env('SCOPE', 'players:write');
const SQUAD_NUMBER = Number(env('SQUAD_NUMBER', '31'));
const CHROMIUM = env('CHROMIUM', '/usr/bin/chromium');
const WORK_DIR = process.env.WORK_DIR;
if (!WORK_DIR) {
  console.error('WORK_DIR is not set');
  process.exit(2);
}
const PLAYER = {
  firstName: 'Paulo',
  lastName: 'Díaz',
  squadNumber: SQUAD_NUMBER,
  position: 'Centre-Back',
};

const playwrightVersion = createRequire(import.meta.url)('playwright-core/package.json').version;
const started = Date.now();
const say = (line) => console.log(`    [${((Date.now() - started) / 1000).toFixed(1)}s] ${line}`);
class Failure extends Error {}
const check = (ok, message) => {
  if (!ok) throw new Failure(message);
};

// ---------------------------------------------------------------------------------------------
// What the browser did on the network, from the DevTools protocol: unlike Playwright's page
// events it reports CORS preflights and why a request was blocked (corsErrorStatus).

const network = new Map(); // requestId -> { type, method, url, status, acHeaders, error }
const consoleErrors = [];
// Only the CORS headers of a response and the names of the headers a preflight asks for are
// kept: the token request's Authorization carries the client secret, its response a token.
const corsHeaders = (headers) =>
  Object.entries(headers ?? {})
    .filter(([name]) => name.toLowerCase().startsWith('access-control-'))
    .map(([name, value]) => `${name.toLowerCase()}: ${value}`);
const watched = (url) => url.startsWith(TOKEN_URL) || url.startsWith(`${API_URL}/players`);

async function recordNetwork(context, page) {
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  cdp.on('Network.requestWillBeSent', ({ requestId, type, request }) => {
    if (!watched(request.url)) return;
    // A preflight has its own requestId; its request is the OPTIONS Chromium sends.
    const asked = Object.entries(request.headers)
      .filter(([name]) => name.toLowerCase().startsWith('access-control-request-'))
      .map(([name, value]) => `${name.toLowerCase()}: ${value}`);
    network.set(requestId, { type, method: request.method, url: request.url, asked, acHeaders: [] });
  });
  cdp.on('Network.responseReceived', ({ requestId, type, response }) => {
    const entry = network.get(requestId);
    if (!entry) return;
    Object.assign(entry, { type, status: response.status, acHeaders: corsHeaders(response.headers) });
  });
  cdp.on('Network.loadingFailed', ({ requestId, type, errorText, corsErrorStatus, blockedReason }) => {
    const entry = network.get(requestId);
    if (!entry) return;
    const cors = corsErrorStatus
      ? ` CORS ${corsErrorStatus.corsError}${corsErrorStatus.failedParameter ? ` (${corsErrorStatus.failedParameter})` : ''}`
      : '';
    Object.assign(entry, { type, error: `${errorText}${cors}${blockedReason ? ` blocked: ${blockedReason}` : ''}` });
  });
}

function printNetwork() {
  console.log('    network (token endpoint and /players, as the browser saw them):');
  if (network.size === 0) console.log('      (nothing)');
  for (const e of network.values()) {
    const outcome = e.error ? `FAILED ${e.error}` : (e.status ?? 'no response');
    console.log(`      ${e.type ?? '?'} ${e.method} ${e.url} -> ${outcome}`);
    for (const line of [...e.asked, ...e.acHeaders]) console.log(`        ${line}`);
  }
}

// ---------------------------------------------------------------------------------------------

let step = 'launch Chromium';
let page;
const context = await chromium.launchPersistentContext(path.join(WORK_DIR, 'chromium-profile'), {
  executablePath: CHROMIUM,
  headless: true, // Playwright adds --headless
  chromiumSandbox: false, // Playwright adds --no-sandbox (root, in a container)
  // Playwright also adds --no-first-run, --disable-background-networking,
  // --disable-component-update and a --user-data-dir of its own (the fresh profile above); they
  // are listed again so this launch reads the same as a hand-run one.
  args: [
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
  timeout: 120_000,
});
try {
  say(`Chromium ${context.browser()?.version()} (${CHROMIUM}), playwright-core ${playwrightVersion}`);
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(30_000);
  page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
  page.on('pageerror', (e) => consoleErrors.push(`page error: ${e.message}`));
  await recordNetwork(context, page);

  step = `open ${DOCS_URL}`;
  // The page inlines Swagger UI's whole bundle (about 1.5 MB): slow on a busy 2-core machine.
  await page.goto(DOCS_URL, { waitUntil: 'load', timeout: 120_000 });
  // Swagger UI's top bar button that opens the "Available authorizations" dialog. Its name is
  // its text, "Authorize"; the lock icons on each operation are "authorization button
  // unlocked", and the dialog's own Authorize button is labelled "Apply given OAuth2
  // credentials", so an exact name picks this one.
  const openDialog = page.getByRole('button', { name: 'Authorize', exact: true });
  await openDialog.waitFor({ timeout: 60_000 });
  say('Swagger UI loaded');

  step = 'open the Authorize dialog';
  await openDialog.click();
  // Swagger UI's modal has no dialog role: it is the .modal-ux element that holds the
  // "Available authorizations" heading.
  const dialog = page
    .locator('.modal-ux')
    .filter({ has: page.getByRole('heading', { name: 'Available authorizations' }) });
  await dialog.waitFor();
  // The clientCredentials block shows the token URL it will POST to, from the spec's
  // securitySchemes: a wrong tokenUrl is seen here rather than as a network error later.
  const tokenUrlShown = (await dialog.getByText('Token URL:').textContent()).replace('Token URL:', '').trim();
  check(tokenUrlShown === TOKEN_URL, `the dialog's Token URL is ${tokenUrlShown}, expected ${TOKEN_URL}`);

  step = 'fill the client and pick the scope';
  // The two text inputs of the clientCredentials form, each with a <label for> "client_id:" and
  // "client_secret:".
  await dialog.getByLabel('client_id:').fill(CLIENT_ID);
  await dialog.getByLabel('client_secret:').fill(CLIENT_SECRET);
  // Each scope of the flow is a checkbox whose <input> Swagger UI hides (CSS) behind a drawn
  // box; its <label> holds the scope's name, so clicking the name ticks it. Shown only when the
  // spec lists scopes for the flow.
  const scopeBox = dialog.getByRole('checkbox', { name: SCOPE, includeHidden: true });
  if ((await scopeBox.count()) > 0) {
    await dialog.getByText(SCOPE, { exact: true }).click();
    check(await scopeBox.isChecked(), `the ${SCOPE} checkbox did not get ticked`);
    say(`client ${CLIENT_ID}, scope ${SCOPE} ticked`);
  } else {
    say(`client ${CLIENT_ID} (no scope checkbox shown for ${SCOPE})`);
  }

  step = `authorize (POST ${TOKEN_URL} from the ${new URL(DOCS_URL).origin} page)`;
  const tokenResponse = page
    .waitForResponse((r) => r.url() === TOKEN_URL && r.request().method() === 'POST')
    .catch(() => null);
  // The dialog's Authorize button (visible text "Authorize", aria-label "Apply given OAuth2
  // credentials").
  await dialog.getByRole('button', { name: 'Apply given OAuth2 credentials' }).click();
  // Success: Swagger UI swaps the form for an "Authorized" heading and a Logout button (aria-
  // label "Remove authorization"). Failure: it adds an error box to the dialog, a bold "auth
  // error" followed by the message: the token endpoint's status text or error body, or
  // "TypeError: Failed to fetch" when the browser refused the response (e.g. CORS).
  const authorized = dialog.getByRole('button', { name: 'Remove authorization' });
  const authError = dialog.getByText(/^auth (error|warning)$/i);
  await authorized.or(authError).first().waitFor();
  if (await authError.first().isVisible()) {
    const box = await authError.first().locator('xpath=..').textContent();
    throw new Failure(`Swagger UI says: ${box}`);
  }
  const token = await tokenResponse;
  check(token !== null, 'the browser saw no response from the token endpoint');
  check(token.status() === 200, `the token endpoint answered ${token.status()}`);
  const preflight = [...network.values()].find((e) => e.type === 'Preflight' && e.url === TOKEN_URL);
  check(preflight?.status === 200, `no successful CORS preflight for ${TOKEN_URL} was seen`);
  say(`authorized: token endpoint 200 after a CORS preflight ${preflight.status}`);

  step = 'close the dialog';
  await dialog.getByRole('button', { name: 'Close', exact: true }).click();
  await dialog.waitFor({ state: 'detached' });

  step = 'open POST /players and click "Try it out"';
  // An operation's summary bar is a button named by method, path and summary
  // ("POST /players Add a player. …"); the regex is case-sensitive, so the bar's separate
  // "post /players" expand arrow and the /players/{…} operations do not match.
  const summary = page.getByRole('button', { name: /^POST \/players(?![\w/])/ });
  await summary.click();
  // The expanded operation: the .opblock that holds that summary bar (Swagger UI gives it no role).
  const operation = page.locator('.opblock').filter({ has: summary });
  await operation.getByRole('button', { name: 'Try it out' }).click();

  step = 'put the player in the request body and execute';
  // POST /players has no parameters, so the body editor (a <textarea>) is its only textbox.
  await operation.getByRole('textbox').fill(JSON.stringify(PLAYER));
  const created = page
    .waitForResponse((r) => r.url() === `${API_URL}/players` && r.request().method() === 'POST')
    .catch(() => null);
  await operation.getByRole('button', { name: 'Execute' }).click();

  step = 'read the status Swagger UI shows';
  // "Server response" is a table with the columns Code and Details (the documented "Responses"
  // table below it has Code, Description and Links); its first body row is the live response,
  // whose first cell is the status ("Undocumented" with "Failed to fetch." when the browser got
  // no response).
  const serverResponse = operation
    .getByRole('table')
    .filter({ has: page.getByRole('cell', { name: 'Details', exact: true }) });
  const statusCell = serverResponse.getByRole('row').nth(1).getByRole('cell').first();
  await statusCell.waitFor();
  const shown = (await statusCell.textContent()).trim();
  check(shown === '201', `Swagger UI shows ${shown}: ${(await serverResponse.textContent()).slice(0, 400)}`);
  say('Swagger UI shows 201');

  step = 'check the response on the network';
  const response = await created;
  check(response !== null, 'the browser saw no response to POST /players');
  const request = response.request();
  check(response.status() === 201, `the network saw ${response.status()}`);
  check(
    /^Bearer \S+$/.test((await request.allHeaders()).authorization ?? ''),
    'the POST carried no Bearer token from the Authorize dialog',
  );
  const body = await response.json();
  check(
    body.firstName === PLAYER.firstName && body.lastName === PLAYER.lastName && body.squadNumber === SQUAD_NUMBER,
    `the created player is not the one sent: ${JSON.stringify(body)}`,
  );
  const location = (await response.allHeaders()).location;
  check(location === `/players/${body.id}`, `Location is ${location}, expected /players/${body.id}`);
  // And the player is really stored: a fresh read, outside the browser.
  const read = await fetch(`${API_URL}/players/squadnumber/${SQUAD_NUMBER}`);
  check(read.status === 200 && (await read.json()).id === body.id, `GET by squad number answered ${read.status}`);
  say(`network: POST /players 201 with a Bearer token, Location ${location}; a fresh GET finds it`);
  printNetwork();
} catch (error) {
  console.log(`    FAIL  at "${step}": ${error instanceof Failure ? error.message : error.stack}`);
  if (page) {
    const shot = path.join(WORK_DIR, 'swagger-ui-failure.png');
    await page
      .screenshot({ path: shot, fullPage: true, timeout: 30_000 })
      .then(() => console.log(`    screenshot: ${shot} (kept with KEEP_TMP=1)`))
      .catch((e) => console.log(`    no screenshot: ${e.message}`));
  }
  console.log('    browser console errors:');
  for (const line of consoleErrors.length ? consoleErrors : ['(none)']) console.log(`      ${line}`);
  printNetwork();
  process.exitCode = 1;
} finally {
  await context.close().catch(() => {});
}
