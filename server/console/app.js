// The console's shell: who is signed in, the navigation, and the routes by location.hash.
import * as api from './api.js';
import { h, replace } from './dom.js';
import { t, lang, setLang } from './i18n.js';
import { loginPage } from './login.js';
import * as operator from './operator.js';
import { evidencePage } from './evidence.js';
import * as enterprise from './enterprise.js';
import { regulatorPage } from './regulator.js';

/** The signed-in account (GET /me), or null. */
let me = null;
let flash = null;
/** Where the person was going when the sign-in page was shown (memory only). */
let returnTo = null;

const main = () => document.getElementById('main');
const nav = () => document.getElementById('nav');

export function can(permission) {
  return Boolean(me && me.permissions.includes(permission));
}

export function account() {
  return me;
}

/** Shows a message once, on the next page drawn. */
export function setFlash(kind, text) {
  flash = { kind, text };
}

export function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

/** Reads the session (after a sign-in or a reload) and draws the current route. */
export async function start() {
  try {
    me = await api.get('/me', { quiet: true });
    api.setCsrfToken(me.csrf_token);
  } catch (error) {
    me = null;
    if (error.code === 'session_expired') setFlash('warn', t('session.expired'));
  }
  drawFrame();
  route();
}

export async function signOut() {
  try {
    await api.del('/sessions');
  } catch {
    // The session may already be gone; the page forgets it either way.
  }
  me = null;
  returnTo = null;
  api.setCsrfToken(null);
  setFlash('info', t('session.signed_out'));
  drawFrame();
  go('#/login');
}

function homeOf(account) {
  if (!account) return '#/login';
  if (account.role === 'enterprise') return '#/enterprise';
  if (account.role === 'regulator') return '#/regulator';
  if (account.role === 'operator') return '#/queues';
  return '#/unsupported';
}

function navLinks() {
  if (!me) return [];
  if (me.role === 'operator') {
    return [
      ['#/queues', 'nav.queues'],
      can('review_tasks') && ['#/tasks-review', 'nav.tasks_review'],
      can('review_evidence') && ['#/evidence', 'nav.evidence'],
      can('read_all_work') && ['#/statements', 'nav.statements'],
      can('read_all_work') && ['#/disputes', 'nav.disputes'],
    ].filter(Boolean);
  }
  if (me.role === 'enterprise') {
    return [
      ['#/enterprise', 'nav.enterprise_home'],
      ['#/enterprise/tasks', 'nav.tasks'],
      ['#/enterprise/orders', 'nav.orders'],
      ['#/enterprise/invoices', 'nav.invoices'],
    ];
  }
  if (me.role === 'regulator') return [['#/regulator', 'nav.regulator']];
  return [];
}

function drawFrame() {
  document.title = t('app.title');
  document.documentElement.lang = lang() === 'zh' ? 'zh-CN' : 'en';
  const switcher = h(
    'button',
    {
      type: 'button',
      class: 'link lang-switch',
      'data-test': 'lang-switch',
      onclick: () => {
        setLang(lang() === 'zh' ? 'en' : 'zh');
        drawFrame();
        route();
      },
    },
    lang() === 'zh' ? 'English' : '中文',
  );
  // The link whose route is the longest prefix of the current one is the active one.
  const current = location.hash.split('?')[0];
  const active = navLinks()
    .map(([hash]) => hash)
    .filter((hash) => current === hash || current.startsWith(`${hash}/`))
    .sort((a, b) => b.length - a.length)[0];
  const links = navLinks().map(([hash, key]) =>
    h(
      'a',
      {
        href: hash,
        class: hash === active ? 'active' : null,
      },
      t(key),
    ),
  );
  const who = me
    ? [
        h(
          'span',
          { class: 'who' },
          `${t(`role.${me.role}`)}${
            me.teams && me.teams.length
              ? ` · ${me.teams.map((team) => t(`team.${team}`)).join(', ')}`
              : ''
          }`,
        ),
        h(
          'button',
          { type: 'button', class: 'link', 'data-test': 'sign-out', onclick: signOut },
          t('session.sign_out'),
        ),
      ]
    : [];
  replace(
    nav(),
    h('a', { href: homeOf(me), class: 'brand' }, t('app.title')),
    h('nav', { class: 'links' }, links),
    h('div', { class: 'account' }, who, switcher),
  );
}

const ROUTES = [
  [/^#\/login$/, () => loginPage({ onSignedIn: start })],
  [/^#\/queues$/, () => operator.queuesPage()],
  [/^#\/tasks-review$/, () => operator.tasksReviewPage()],
  [/^#\/evidence$/, () => operator.evidenceQueuePage()],
  [/^#\/statements$/, () => operator.statementsPage()],
  [/^#\/disputes$/, () => operator.disputesPage()],
  [/^#\/orders\/([^/]+)\/evidence$/, (m) => evidencePage(decodeURIComponent(m[1]))],
  [/^#\/enterprise$/, () => enterprise.homePage()],
  [/^#\/enterprise\/tasks$/, () => enterprise.tasksPage()],
  [/^#\/enterprise\/orders$/, () => enterprise.ordersPage()],
  [/^#\/enterprise\/orders\/([^/]+)$/, (m) => enterprise.orderPage(decodeURIComponent(m[1]))],
  [/^#\/enterprise\/invoices$/, () => enterprise.invoicesPage()],
  [/^#\/regulator$/, () => regulatorPage()],
  [/^#\/unsupported$/, () => h('p', { class: 'flash info' }, t('page.workers_use_phone'))],
];

let drawing = 0;

/** Draws the page of the current hash into the main area. */
export async function route() {
  const hash = location.hash || '#/';
  if (!me && hash !== '#/login') {
    if (hash !== '#/') returnTo = hash;
    location.replace('#/login');
    if (hash === '#/') route();
    return;
  }
  if (me && (hash === '#/' || hash === '#/login')) {
    location.replace(hash === '#/login' && returnTo ? returnTo : homeOf(me));
    returnTo = null;
    return;
  }
  drawFrame();
  const ticket = ++drawing;
  const area = main();
  const notice = flash
    ? h('p', { class: `flash ${flash.kind}`, role: 'status' }, flash.text)
    : null;
  flash = null;
  const path = hash.split('?')[0];
  const match = ROUTES.map(([pattern, page]) => [path.match(pattern), page]).find(([m]) => m);
  if (!match) {
    replace(area, notice, h('h1', {}, t('page.not_found')));
    return;
  }
  replace(area, notice, h('p', { class: 'loading' }, t('page.loading')));
  try {
    const page = await match[1](match[0]);
    if (ticket !== drawing) return;
    replace(area, notice, page);
  } catch (error) {
    if (ticket !== drawing) return;
    if (error.code === 'second_factor_setup_required') {
      me = null;
      go('#/login');
      return;
    }
    if (error.status === 401) return;
    replace(
      area,
      notice,
      h('h1', {}, t('page.error')),
      h(
        'p',
        { class: 'error', 'data-test': 'page-error' },
        `${error.message} (${error.code || ''})`,
      ),
    );
  }
}

api.onSessionExpired((error) => {
  me = null;
  if (location.hash !== '#/login') returnTo = location.hash;
  api.setCsrfToken(null);
  setFlash(
    'warn',
    error.code === 'session_expired' ? t('session.expired') : t('session.signed_out'),
  );
  drawFrame();
  if (location.hash === '#/login') route();
  else location.hash = '#/login';
});

window.addEventListener('hashchange', route);
start();
