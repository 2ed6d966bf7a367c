// Enterprise pages: escrow and what waits for the enterprise, its tasks, its orders with
// confirm / dispute of completion and of the statement, settlements and invoices.
import * as api from './api.js';
import { h } from './dom.js';
import { t } from './i18n.js';
import { dateTime, yuan, shortId } from './format.js';
import { field, textInput, clearErrors, showApiError, busy, requireText } from './forms.js';
import { can, setFlash, route } from './app.js';
import { statusBadge, verdictBadge } from './badges.js';
import { pagedRows, table } from './paging.js';

async function taskTitles() {
  const tasks = await api.get('/tasks');
  return new Map(tasks.map((task) => [task.id, task.title]));
}

const FINAL = ['cancelled', 'settled', 'paid', 'invoiced', 'void'];

function awaitsCompletion(order) {
  return (
    Boolean(order.submitted_at) &&
    !order.confirmation &&
    !FINAL.includes(order.status) &&
    // Sent back to the worker: confirming waits for the new evidence.
    order.status !== 'returned' &&
    !order.statement
  );
}

function awaitsStatement(order) {
  return Boolean(
    order.statement &&
    order.statement.status === 'open' &&
    (order.statement.awaiting || []).includes('enterprise'),
  );
}

function orderLink(order, titles) {
  return h(
    'a',
    {
      href: `#/enterprise/orders/${encodeURIComponent(order.id)}`,
      'data-test': 'order-link',
      'data-order': order.id,
    },
    titles.get(order.task_id) || shortId(order.id),
  );
}

/** Escrow balance and what waits for the enterprise. */
export async function homePage() {
  // Only the orders that may wait for the enterprise, by the server's status filter.
  const [escrow, submitted, reconciling, titles] = await Promise.all([
    api.get('/enterprise/escrow'),
    api.getAll('/orders', { status: 'submitted' }),
    api.getAll('/orders', { status: 'reconciling' }),
    taskTitles(),
  ]);
  const toConfirm = submitted.filter(awaitsCompletion);
  const statements = reconciling.filter(awaitsStatement);
  return h(
    'div',
    { 'data-test': 'enterprise-home' },
    h('h1', {}, t('enterprise.title')),
    h(
      'section',
      { class: 'card escrow' },
      h('h2', {}, t('escrow.title')),
      h('p', { class: 'big-number', 'data-test': 'escrow-balance' }, yuan(escrow.balance_fen)),
      h('h3', {}, t('escrow.deposits')),
      table(
        [t('escrow.value_date'), t('escrow.reference'), t('escrow.amount')],
        (escrow.deposits || []).map((d) =>
          h(
            'tr',
            {},
            h('td', {}, d.value_date),
            h('td', {}, d.bank_reference),
            h('td', { class: 'money' }, yuan(d.amount_fen)),
          ),
        ),
        'deposits',
      ),
      h('h3', {}, t('escrow.movements')),
      table(
        [t('escrow.when'), t('escrow.kind'), t('escrow.amount')],
        (escrow.movements || []).map((m) =>
          h(
            'tr',
            {},
            h('td', {}, dateTime(m.at)),
            h('td', {}, t(`movement.${m.kind}`)),
            h('td', { class: 'money' }, yuan(m.amount_fen)),
          ),
        ),
        'movements',
      ),
    ),
    h(
      'section',
      { class: 'card' },
      h('h2', {}, t('enterprise.to_confirm')),
      table(
        [t('order.task'), t('order.submitted'), t('order.status'), t('order.verdict')],
        toConfirm.map((o) =>
          h(
            'tr',
            {},
            h('td', {}, orderLink(o, titles)),
            h('td', {}, dateTime(o.submitted_at)),
            h('td', {}, statusBadge(o.status)),
            h('td', {}, verdictBadge(o.verdict)),
          ),
        ),
        'to-confirm',
      ),
    ),
    h(
      'section',
      { class: 'card' },
      h('h2', {}, t('enterprise.statements_to_confirm')),
      table(
        [t('order.task'), t('statement.total'), t('statement.awaiting')],
        statements.map((o) =>
          h(
            'tr',
            {},
            h('td', {}, orderLink(o, titles)),
            h('td', { class: 'money' }, yuan(o.statement.total_fen)),
            h('td', {}, o.statement.awaiting.map((p) => t(`party.${p}`)).join(', ')),
          ),
        ),
        'statements-to-confirm',
      ),
    ),
  );
}

export async function tasksPage() {
  const tasks = await api.get('/tasks');
  return h(
    'div',
    { 'data-test': 'enterprise-tasks' },
    h('h1', {}, t('nav.tasks')),
    h(
      'section',
      { class: 'card' },
      table(
        [t('task.title'), t('order.status'), t('task.window'), t('task.fee'), t('task.missing')],
        tasks.map((task) =>
          h(
            'tr',
            {},
            h('td', {}, task.title),
            h('td', {}, statusBadge(task.status)),
            h('td', {}, `${dateTime(task.window.from_ms)} – ${dateTime(task.window.to_ms)}`),
            h('td', { class: 'money' }, yuan(task.fee_fen)),
            h('td', {}, (task.missing_fields || []).join(', ') || '—'),
          ),
        ),
        'tasks-table',
      ),
    ),
  );
}

export async function ordersPage() {
  const titles = await taskTitles();
  const tbody = h('tbody');
  const row = (o) =>
    h(
      'tr',
      {},
      h('td', {}, orderLink(o, titles)),
      h('td', {}, dateTime(o.created_at)),
      h('td', {}, statusBadge(o.status)),
      h('td', {}, verdictBadge(o.verdict)),
      h('td', { class: 'money' }, o.statement ? yuan(o.statement.total_fen) : '—'),
      h('td', { class: 'money' }, o.settlement ? yuan(o.settlement.net_fen) : '—'),
    );
  const headers = [
    t('order.task'),
    t('order.created'),
    t('order.status'),
    t('order.verdict'),
    t('statement.total'),
    t('settlement.net'),
  ];
  const { foot } = await pagedRows(tbody, '/orders', {}, row, headers.length);
  return h(
    'div',
    { 'data-test': 'enterprise-orders' },
    h('h1', {}, t('nav.orders')),
    h(
      'section',
      { class: 'card' },
      h(
        'table',
        { 'data-test': 'orders-table' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            headers.map((x) => h('th', {}, x)),
          ),
        ),
        tbody,
      ),
      foot,
    ),
  );
}

/** A button that posts, or a reason form that posts with `{reason}`. */
function actionButton(label, path, done, test, kind = 'primary') {
  const button = h('button', { type: 'button', class: kind, 'data-test': test }, label);
  const slot = h('p', { class: 'form-error', role: 'alert' });
  button.addEventListener(
    'click',
    busy(button, async () => {
      slot.textContent = '';
      try {
        await api.post(path);
        setFlash('ok', done);
        route();
      } catch (error) {
        slot.textContent = error.message;
      }
    }),
  );
  return h('div', { class: 'action' }, button, slot);
}

function reasonForm(label, path, done, test) {
  const reason = textInput({ 'data-test': `${test}-reason` });
  const submit = h('button', { type: 'submit', class: 'danger', 'data-test': test }, label);
  const form = h(
    'form',
    { class: 'inline-form', novalidate: true },
    field('reason', t('form.reason'), reason),
    submit,
  );
  form.addEventListener(
    'submit',
    busy(submit, async () => {
      clearErrors(form);
      if (!requireText(form, 'reason', reason.value)) return;
      try {
        await api.post(path, { reason: reason.value.trim() });
        setFlash('ok', done);
        route();
      } catch (error) {
        showApiError(form, error, () => 'reason');
      }
    }),
  );
  return form;
}

function amounts(rows) {
  return h(
    'dl',
    { class: 'facts amounts' },
    rows.map(([label, value, test]) => [
      h('dt', {}, label),
      h('dd', { class: 'money', 'data-test': test }, value),
    ]),
  );
}

/** One order: completion, statement, settlement, invoices. */
export async function orderPage(id) {
  const path = `/orders/${encodeURIComponent(id)}`;
  const order = await api.get(path);
  const [task, invoices] = await Promise.all([
    api.get(`/tasks/${encodeURIComponent(order.task_id)}`),
    api.get(`/invoices${api.query({ order_id: order.id })}`),
  ]);
  const mine = invoices;
  const statement = order.statement;
  const settlement = order.settlement || (statement && statement.settlement);
  return h(
    'div',
    { 'data-test': 'enterprise-order', 'data-order': order.id },
    h(
      'header',
      { class: 'page-head' },
      h('h1', {}, task.title),
      h('div', { class: 'badges' }, statusBadge(order.status), verdictBadge(order.verdict)),
    ),
    h(
      'p',
      {},
      h(
        'a',
        { href: `#/orders/${encodeURIComponent(order.id)}/evidence`, 'data-test': 'evidence-link' },
        t('order.view_evidence'),
      ),
    ),
    h(
      'section',
      { class: 'card', 'data-test': 'completion' },
      h('h2', {}, t('order.completion')),
      h(
        'dl',
        { class: 'facts inline' },
        h('dt', {}, t('order.submitted')),
        h('dd', {}, dateTime(order.submitted_at)),
        h('dt', {}, t('order.confirmation')),
        h('dd', {}, order.confirmation ? t(`confirmation.${order.confirmation}`) : '—'),
        order.operator_decision
          ? [
              h('dt', {}, t('evidence.decision')),
              h(
                'dd',
                {},
                `${t(`decision.${order.operator_decision}`)} · ${order.operator_reason || ''}`,
              ),
            ]
          : null,
      ),
      awaitsCompletion(order) && can('confirm_work')
        ? actionButton(t('order.confirm'), `${path}/confirm`, t('order.confirmed'), 'confirm-order')
        : null,
      awaitsCompletion(order) && can('dispute_work')
        ? reasonForm(t('order.dispute'), `${path}/dispute`, t('order.disputed'), 'dispute-order')
        : null,
    ),
    statement
      ? h(
          'section',
          { class: 'card', 'data-test': 'statement' },
          h('h2', {}, t('statement.title', { version: statement.version })),
          amounts([
            [t('statement.gross'), yuan(statement.gross_fen)],
            [t('statement.fee'), yuan(statement.fee_fen)],
            [t('statement.total'), yuan(statement.total_fen), 'statement-total'],
          ]),
          h(
            'p',
            {},
            statusBadge(statement.status),
            ' ',
            statement.awaiting && statement.awaiting.length
              ? `${t('statement.awaiting')}: ` +
                  statement.awaiting.map((p) => t(`party.${p}`)).join(', ')
              : '',
          ),
          awaitsStatement(order) && can('confirm_statements')
            ? actionButton(
                t('statement.confirm'),
                `/statements/${encodeURIComponent(statement.id)}/confirm`,
                t('statement.confirmed'),
                'confirm-statement',
              )
            : null,
          awaitsStatement(order) && can('confirm_statements')
            ? reasonForm(
                t('statement.dispute'),
                `/statements/${encodeURIComponent(statement.id)}/dispute`,
                t('statement.disputed'),
                'dispute-statement',
              )
            : null,
        )
      : null,
    settlement
      ? h(
          'section',
          { class: 'card', 'data-test': 'settlement' },
          h('h2', {}, t('settlement.title')),
          amounts([
            [t('settlement.gross'), yuan(settlement.gross_fen), 'settlement-gross'],
            [t('settlement.tax'), yuan(settlement.tax_fen), 'settlement-tax'],
            [t('settlement.net'), yuan(settlement.net_fen), 'settlement-net'],
            [t('statement.fee'), yuan(settlement.fee_fen)],
          ]),
          h(
            'p',
            {},
            `${t('settlement.method')}: ${t(`tax_method.${settlement.tax_method}`)} · ` +
              `${t('settlement.payout')}: `,
            statusBadge(settlement.status),
          ),
        )
      : null,
    h(
      'section',
      { class: 'card', 'data-test': 'order-invoices' },
      h('h2', {}, t('nav.invoices')),
      invoiceTable(mine),
    ),
  );
}

function invoiceHeaders() {
  return [
    t('invoice.number'),
    t('invoice.kind'),
    t('order.status'),
    t('invoice.total'),
    t('invoice.issued'),
    t('invoice.lines'),
  ];
}

function invoiceRow(inv) {
  return h(
    'tr',
    {},
    h('td', {}, inv.number || '—'),
    h('td', {}, t(`invoice.kind_${inv.kind}`)),
    h('td', {}, statusBadge(inv.status)),
    h('td', { class: 'money' }, yuan(inv.total_fen)),
    h('td', {}, dateTime(inv.issued_at_ms)),
    h('td', {}, String((inv.lines || []).length)),
  );
}

function invoiceTable(invoices) {
  return table(invoiceHeaders(), invoices.map(invoiceRow), 'invoices-table');
}

/**
 * The invoices of `params` a page at a time: the table, the "more" control, and
 * `onChange(shown, more, totalFen)` for whoever counts them.
 */
async function pagedInvoices(params, onChange = () => {}) {
  const headers = invoiceHeaders();
  const tbody = h('tbody');
  let total = 0n;
  const row = (inv) => {
    total += BigInt(inv.total_fen);
    return invoiceRow(inv);
  };
  const { foot } = await pagedRows(tbody, '/invoices', params, row, headers.length, (n, more) =>
    onChange(n, more, total),
  );
  const head = h(
    'thead',
    {},
    h(
      'tr',
      {},
      headers.map((x) => h('th', {}, x)),
    ),
  );
  return { table: h('table', { 'data-test': 'invoices-table' }, head, tbody), foot };
}

export async function invoicesPage() {
  const { table: invoices, foot } = await pagedInvoices({});
  return h(
    'div',
    { 'data-test': 'enterprise-invoices' },
    h('h1', {}, t('nav.invoices')),
    h('section', { class: 'card' }, invoices, foot),
  );
}

export { invoiceTable, pagedInvoices };
