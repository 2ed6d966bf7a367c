// The regulator's read-only view (standard 5.2 f): orders with evidence summaries and
// invoices, filtered by date range and enterprise. No action buttons at all.
import * as api from './api.js';
import { h } from './dom.js';
import { t } from './i18n.js';
import { dateTime, yuan, shortId } from './format.js';
import { field, textInput, select, clearErrors, showApiError } from './forms.js';
import { statusBadge, verdictBadge } from './badges.js';
import { pagedInvoices } from './enterprise.js';
import { pagedRows } from './paging.js';

function filtersFromHash() {
  const search = new URLSearchParams(location.hash.split('?')[1] || '');
  return {
    from: search.get('from') || '',
    to: search.get('to') || '',
    enterprise_id: search.get('enterprise_id') || '',
  };
}

function summary(s) {
  if (!s) return '—';
  return t('regulator.summary', {
    photos: s.photos,
    points: s.track_points,
    signatures: s.signatures,
    notes: s.notes,
    findings: s.findings,
  });
}

export async function regulatorPage() {
  const filters = filtersFromHash();
  const tasks = await api.get('/tasks');
  const titles = new Map(tasks.map((task) => [task.id, task.title]));
  // Every order belongs to a task, so the tasks name every enterprise there is to choose.
  const enterprises = [...new Set(tasks.map((task) => task.enterprise_id))].sort();
  const from = textInput({ type: 'date', value: filters.from, 'data-test': 'filter-from' });
  const to = textInput({ type: 'date', value: filters.to, 'data-test': 'filter-to' });
  const enterprise = select(
    [['', t('regulator.all_enterprises')], ...enterprises.map((id) => [id, shortId(id)])],
    { 'data-test': 'filter-enterprise' },
  );
  enterprise.value = filters.enterprise_id;
  const apply = h(
    'button',
    { type: 'submit', class: 'primary', 'data-test': 'filter-apply' },
    t('regulator.filter'),
  );
  const form = h(
    'form',
    { class: 'filters', novalidate: true, role: 'search' },
    field('from', t('regulator.from'), from),
    field('to', t('regulator.to'), to),
    field('enterprise_id', t('regulator.enterprise'), enterprise),
    apply,
  );
  const results = h('div', { 'data-test': 'regulator-results' });
  const page = h(
    'div',
    { 'data-test': 'regulator-page' },
    h('h1', {}, t('regulator.title')),
    h('p', { class: 'muted' }, t('regulator.read_only')),
    form,
    results,
  );

  async function load(values) {
    clearErrors(form);
    // Dates are whole days (China Standard Time) and both bounds count.
    const params = { enterprise_id: values.enterprise_id, from: values.from, to: values.to };
    try {
      const orderRow = (o) =>
        h(
          'tr',
          { 'data-test': 'regulator-order', 'data-order': o.id },
          h(
            'td',
            {},
            h('a', { href: `#/orders/${encodeURIComponent(o.id)}/evidence` }, shortId(o.id)),
          ),
          h('td', {}, titles.get(o.task_id) || shortId(o.task_id)),
          h('td', {}, shortId(o.enterprise_id)),
          h('td', {}, dateTime(o.created_at)),
          h('td', {}, statusBadge(o.status)),
          h('td', {}, verdictBadge(o.verdict)),
          h('td', {}, summary(o.evidence_summary)),
        );
      const headers = [
        t('order.id'),
        t('order.task'),
        t('regulator.enterprise'),
        t('order.created'),
        t('order.status'),
        t('order.verdict'),
        t('regulator.evidence'),
      ];
      const count = h('span', { class: 'count', 'data-test': 'order-count' });
      const tbody = h('tbody');
      const invoiceCount = h('span', { class: 'count', 'data-test': 'invoice-count' });
      const invoiceTotal = h('p', { class: 'muted', 'data-test': 'invoice-total' });
      const [{ foot }, invoices] = await Promise.all([
        pagedRows(tbody, '/orders', params, orderRow, headers.length, (shown, more) => {
          count.textContent = more ? `${shown}+` : String(shown);
        }),
        pagedInvoices(params, (shown, more, totalFen) => {
          invoiceCount.textContent = more ? `${shown}+` : String(shown);
          const label = more ? t('invoice.total_shown') : t('invoice.total');
          invoiceTotal.textContent = `${label}: ${yuan(totalFen)}`;
        }),
      ]);
      results.replaceChildren(
        h(
          'section',
          { class: 'card' },
          h('h2', {}, t('regulator.orders'), ' ', count),
          h(
            'table',
            { 'data-test': 'regulator-orders' },
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
        h(
          'section',
          { class: 'card' },
          h(
            'h2',
            {},
            t('nav.invoices'),
            ' ',
            invoiceCount,
          ),
          invoices.table,
          invoices.foot,
          invoiceTotal,
        ),
      );
    } catch (error) {
      showApiError(form, error, () => null);
    }
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const values = { from: from.value, to: to.value, enterprise_id: enterprise.value };
    if (values.from && values.to && values.from > values.to) {
      clearErrors(form);
      form.querySelector('[data-error-for="to"]').textContent = t('regulator.to_before_from');
      return;
    }
    history.replaceState(null, '', `#/regulator${api.query(values)}`);
    load(values);
  });
  await load(filters);
  return page;
}
