// Operator pages: the queues with their counts and deadlines, applications (masked, with an
// audited reveal), tasks to review, evidence to review, statements and disputes.
import * as api from './api.js';
import { h, replace } from './dom.js';
import { t, errorText } from './i18n.js';
import { table } from './paging.js';
import { dateTime, yuan, shortId, coordinates, distance } from './format.js';
import {
  field,
  textInput,
  textArea,
  select,
  clearErrors,
  showApiError,
  showError,
  busy,
  requireText,
} from './forms.js';
import { can, setFlash, route } from './app.js';
import { statusBadge, verdictBadge, overdueBadge } from './badges.js';

function countCard(key, section, hash) {
  if (!section) return null;
  const lines = [];
  if (section.overdue !== undefined)
    lines.push(
      h(
        'p',
        { class: section.overdue ? 'warn' : 'muted' },
        t('queue.overdue_n', { n: section.overdue }),
      ),
    );
  if (section.next_deadline)
    lines.push(
      h('p', { class: 'muted' }, `${t('queue.next_deadline')} ${dateTime(section.next_deadline)}`),
    );
  if (section.oldest_submitted_at)
    lines.push(
      h('p', { class: 'muted' }, `${t('queue.oldest')} ${dateTime(section.oldest_submitted_at)}`),
    );
  if (section.oldest)
    lines.push(h('p', { class: 'muted' }, `${t('queue.oldest')} ${dateTime(section.oldest)}`));
  const body = [
    h('span', { class: 'number', 'data-test': `count-${key}` }, String(section.count ?? 0)),
    h('span', { class: 'label' }, t(`queue.${key}`)),
    lines,
  ];
  return hash
    ? h('a', { class: 'count-card', href: hash }, body)
    : h('div', { class: 'count-card' }, body);
}

/** Operator home: the counts, then the application queues. */
export async function queuesPage() {
  const queues = await api.get('/queues');
  const page = h(
    'div',
    { 'data-test': 'queues-page' },
    h('h1', {}, t('queue.title')),
    h(
      'div',
      { class: 'count-grid' },
      countCard('worker_applications', queues.worker_applications, '#/queues'),
      countCard('enterprise_applications', queues.enterprise_applications, '#/queues'),
      countCard('tasks_to_review', queues.tasks_to_review, '#/tasks-review'),
      countCard('evidence_to_review', queues.evidence_to_review, '#/evidence'),
      countCard('returned', queues.returned, '#/evidence'),
      countCard('disputes', queues.disputes, '#/disputes'),
    ),
  );
  if (can('review_applications')) {
    const [workers, enterprises] = await Promise.all([
      api.get('/onboarding/workers'),
      api.get('/onboarding/enterprises'),
    ]);
    page.append(workerApplications(workers), enterpriseApplications(enterprises));
  }
  return page;
}

/** A masked value with a reveal button that asks for a reason first. */
function revealable(application, fieldName, masked) {
  const value = h('span', { class: 'masked', 'data-test': `masked-${fieldName}` }, masked);
  if (!can('reveal_personal_data')) return value;
  const button = h(
    'button',
    { type: 'button', class: 'link small', 'data-test': `reveal-${fieldName}` },
    t('reveal.button'),
  );
  const wrapper = h('span', { class: 'revealable' }, value, ' ', button);
  button.addEventListener('click', () => {
    const reason = textInput({
      'data-test': 'reveal-reason',
      placeholder: t('reveal.reason_placeholder'),
    });
    const go2 = h('button', { type: 'submit', class: 'small' }, t('reveal.confirm'));
    const cancel = h('button', { type: 'button', class: 'link small' }, t('form.cancel'));
    const form = h(
      'form',
      { class: 'reveal-form', novalidate: true },
      field('reason', t('reveal.reason'), reason),
      go2,
      cancel,
    );
    cancel.addEventListener('click', () => replace(wrapper, value, ' ', button));
    form.addEventListener(
      'submit',
      busy(go2, async () => {
        clearErrors(form);
        if (!requireText(form, 'reason', reason.value, 5)) return;
        try {
          const revealed = await api.post(
            `/onboarding/workers/${encodeURIComponent(application.id)}/reveal`,
            { field: fieldName, reason: reason.value.trim() },
          );
          const shown = revealed.value.startsWith('data:')
            ? h('img', { src: revealed.value, class: 'face', alt: '' })
            : h(
                'span',
                { class: 'revealed', 'data-test': `revealed-${fieldName}` },
                revealed.value,
              );
          replace(wrapper, shown, h('span', { class: 'muted small' }, ` (${t('reveal.audited')})`));
        } catch (error) {
          showApiError(form, error, () => 'reason');
        }
      }),
    );
    replace(wrapper, value, ' ', form);
    reason.focus();
  });
  return wrapper;
}

/** Approve or reject an application, with a reason. */
function decisionForm(path) {
  const reason = textInput({ placeholder: t('form.reason') });
  const approve = h(
    'button',
    { type: 'submit', class: 'small', value: 'approve' },
    t('decision.approve'),
  );
  const reject = h(
    'button',
    { type: 'submit', class: 'small danger', value: 'reject' },
    t('decision.reject'),
  );
  const form = h(
    'form',
    { class: 'inline-form', novalidate: true },
    field('reason', t('form.reason'), reason),
    approve,
    reject,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const decision = event.submitter && event.submitter.value;
    if (!requireText(form, 'reason', reason.value)) return;
    try {
      await api.post(path, { decision, reason: reason.value.trim() });
      setFlash('ok', t('decision.recorded'));
      route();
    } catch (error) {
      showApiError(form, error, () => 'reason');
    }
  });
  return form;
}

function workerApplications(list) {
  return h(
    'section',
    { class: 'card', 'data-test': 'worker-applications' },
    h('h2', {}, t('queue.worker_applications')),
    table(
      [
        t('app.submitted'),
        t('app.deadline'),
        t('app.name'),
        t('app.id_number'),
        t('app.phone'),
        t('app.bank_card'),
        t('app.checks'),
        t('app.decide'),
      ],
      list.map((a) =>
        h(
          'tr',
          { class: a.overdue ? 'overdue-row' : null },
          h('td', {}, dateTime(a.submitted_at)),
          h('td', {}, dateTime(a.review_deadline), ' ', overdueBadge(a.overdue)),
          h('td', {}, revealable(a, 'name', a.name)),
          h('td', {}, revealable(a, 'id_number', a.id_number)),
          h('td', {}, revealable(a, 'phone', a.phone)),
          h('td', {}, revealable(a, 'bank_card', a.bank_card)),
          h(
            'td',
            {},
            a.automated ? `${t('app.realname')}: ${a.automated.real_name_verification}` : '',
          ),
          h('td', {}, decisionForm(`/onboarding/workers/${encodeURIComponent(a.id)}/decision`)),
        ),
      ),
      'worker-applications-table',
    ),
  );
}

function enterpriseApplications(list) {
  return h(
    'section',
    { class: 'card', 'data-test': 'enterprise-applications' },
    h('h2', {}, t('queue.enterprise_applications')),
    table(
      [
        t('app.submitted'),
        t('app.deadline'),
        t('app.company'),
        t('app.credit_code'),
        t('app.documents_missing'),
        t('app.decide'),
      ],
      list.map((a) =>
        h(
          'tr',
          { class: a.overdue ? 'overdue-row' : null },
          h('td', {}, dateTime(a.submitted_at)),
          h('td', {}, dateTime(a.review_deadline), ' ', overdueBadge(a.overdue)),
          h('td', {}, a.company_name),
          h(
            'td',
            {},
            a.credit_code,
            a.credit_code_check_ok === false
              ? h('span', { class: 'badge warn' }, t('app.check_failed'))
              : null,
          ),
          h('td', {}, (a.documents_missing || []).join(', ') || '—'),
          h('td', {}, decisionForm(`/onboarding/enterprises/${encodeURIComponent(a.id)}/decision`)),
        ),
      ),
      'enterprise-applications-table',
    ),
  );
}

/** Tasks submitted for review: publish with an authenticity check, or refuse with a code. */
export async function tasksReviewPage() {
  const tasks = await api.get('/tasks?status=submitted');
  return h(
    'div',
    { 'data-test': 'tasks-review-page' },
    h('h1', {}, t('tasks_review.title')),
    tasks.length === 0 ? h('p', { class: 'muted' }, t('list.empty')) : null,
    tasks.map((task) =>
      h(
        'section',
        { class: 'card', 'data-test': 'task-to-review' },
        h('h2', {}, task.title),
        h('p', {}, task.description),
        h(
          'dl',
          { class: 'facts inline' },
          h('dt', {}, t('task.site')),
          h(
            'dd',
            {},
            `${coordinates(task.site.lat, task.site.lon)} · ${distance(task.site.radius_m)}`,
          ),
          h('dt', {}, t('task.window')),
          h('dd', {}, `${dateTime(task.window.from_ms)} – ${dateTime(task.window.to_ms)}`),
          h('dt', {}, t('task.fee')),
          h('dd', {}, yuan(task.fee_fen)),
          h('dt', {}, t('task.headcount')),
          h('dd', {}, String(task.headcount ?? '—')),
          h('dt', {}, t('task.acceptance')),
          h('dd', {}, task.acceptance_criteria || '—'),
        ),
        (task.capacity_warnings || []).length
          ? h(
              'ul',
              { class: 'warnings' },
              task.capacity_warnings.map((w) => h('li', { class: 'warn' }, w.message)),
            )
          : h('p', { class: 'muted' }, t('tasks_review.no_warnings')),
        taskReviewForm(task),
      ),
    ),
  );
}

function taskReviewForm(task) {
  const kind = select([
    ['phone_call', t('check.phone_call')],
    ['visit', t('check.visit')],
    ['lookup', t('check.lookup')],
  ]);
  const note = textArea({ placeholder: t('tasks_review.note_placeholder') });
  const code = select([
    ['', '—'],
    ['not_flexible_work', t('refusal.not_flexible_work')],
    ['beyond_one_person', t('refusal.beyond_one_person')],
    ['not_genuine', t('refusal.not_genuine')],
    ['other', t('refusal.other')],
  ]);
  const reason = textArea();
  const publish = h(
    'button',
    { type: 'submit', class: 'primary', value: 'publish' },
    t('tasks_review.publish'),
  );
  const refuse = h(
    'button',
    { type: 'submit', class: 'danger', value: 'refuse' },
    t('tasks_review.refuse'),
  );
  const form = h(
    'form',
    { class: 'two-columns', novalidate: true },
    h(
      'fieldset',
      {},
      h('legend', {}, t('tasks_review.publish_legend')),
      field('check_kind', t('tasks_review.check_kind'), kind),
      field('note', t('tasks_review.note'), note),
      publish,
    ),
    h(
      'fieldset',
      {},
      h('legend', {}, t('tasks_review.refuse_legend')),
      field('reason_code', t('tasks_review.reason_code'), code),
      field('reason', t('form.reason'), reason),
      refuse,
    ),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const decision = event.submitter && event.submitter.value;
    let body;
    if (decision === 'publish') {
      if (!requireText(form, 'note', note.value, 5)) return;
      body = { decision, checks: [{ kind: kind.value, note: note.value.trim() }], reason: '' };
    } else {
      if (!code.value) {
        showError(form, 'reason_code', t('tasks_review.code_required'));
        return;
      }
      if (!requireText(form, 'reason', reason.value, 5)) return;
      body = { decision, reason_code: code.value, reason: reason.value.trim(), checks: [] };
    }
    try {
      await api.post(`/tasks/${encodeURIComponent(task.id)}/review`, body);
      setFlash('ok', t(`tasks_review.done.${decision}`));
      route();
    } catch (error) {
      const names = {
        checks: 'note',
        reason_required: 'reason',
        reason_code_required: 'reason_code',
        authenticity_check_required: 'note',
      };
      showApiError(
        form,
        { code: error.code, message: error.message, field: names[error.field] || error.field },
        (c) => names[c] || null,
      );
    }
  });
  return form;
}

/** Orders whose verdict needs a person, and those sent back to the worker. */
export async function evidenceQueuePage() {
  const [waiting, returned] = await Promise.all([
    api.getAll('/orders', { status: 'needs_review' }),
    api.getAll('/orders', { status: 'returned' }),
  ]);
  const rows = (list) =>
    list.map((o) =>
      h(
        'tr',
        {},
        h(
          'td',
          {},
          h(
            'a',
            {
              href: `#/orders/${encodeURIComponent(o.id)}/evidence`,
              'data-test': 'evidence-link',
              'data-order': o.id,
            },
            shortId(o.id),
          ),
        ),
        h('td', {}, dateTime(o.submitted_at)),
        h('td', {}, statusBadge(o.status)),
        h('td', {}, verdictBadge(o.verdict)),
        h('td', {}, o.report && o.report.findings ? String(o.report.findings.length) : '—'),
      ),
    );
  const headers = [
    t('order.id'),
    t('order.submitted'),
    t('order.status'),
    t('order.verdict'),
    t('order.findings'),
  ];
  return h(
    'div',
    { 'data-test': 'evidence-queue' },
    h('h1', {}, t('queue.evidence_to_review')),
    h('section', { class: 'card' }, table(headers, rows(waiting), 'evidence-table')),
    h('h2', {}, t('queue.returned')),
    h('section', { class: 'card' }, table(headers, rows(returned), 'returned-table')),
  );
}

function statementRow(statement, actions) {
  return h(
    'tr',
    { 'data-test': 'statement-row', 'data-statement': statement.id },
    h(
      'td',
      {},
      h(
        'a',
        { href: `#/orders/${encodeURIComponent(statement.order_id)}/evidence` },
        shortId(statement.order_id),
      ),
    ),
    h('td', {}, `v${statement.version}`),
    h('td', { class: 'money' }, yuan(statement.gross_fen)),
    h('td', { class: 'money' }, yuan(statement.total_fen)),
    h('td', {}, statusBadge(statement.status)),
    h('td', {}, (statement.awaiting || []).map((p) => t(`party.${p}`)).join(', ') || '—'),
    h('td', {}, statement.dispute_reason || ''),
    h('td', {}, actions),
  );
}

const STATEMENT_HEADERS = () => [
  t('order.id'),
  t('statement.version'),
  t('statement.gross'),
  t('statement.total'),
  t('order.status'),
  t('statement.awaiting'),
  t('statement.dispute_reason'),
  '',
];

/** Open statements; the platform confirms its part here. */
export async function statementsPage() {
  const open = await api.get('/statements?status=open');
  return h(
    'div',
    { 'data-test': 'statements-page' },
    h('h1', {}, t('nav.statements')),
    h(
      'section',
      { class: 'card' },
      table(
        STATEMENT_HEADERS(),
        open.map((s) =>
          statementRow(
            s,
            can('confirm_statements') && (s.awaiting || []).includes('platform')
              ? confirmButton(s)
              : null,
          ),
        ),
        'statements-table',
      ),
    ),
  );
}

function confirmButton(statement) {
  const button = h(
    'button',
    { type: 'button', class: 'small primary', 'data-test': 'platform-confirm' },
    t('statement.confirm'),
  );
  button.addEventListener(
    'click',
    busy(button, async () => {
      try {
        await api.post(`/statements/${encodeURIComponent(statement.id)}/confirm`);
        setFlash('ok', t('statement.confirmed'));
        route();
      } catch (error) {
        button.after(h('span', { class: 'error' }, ` ${errorText(error)}`));
      }
    }),
  );
  return button;
}

/** Disputed orders and statements; finance resolves statements. */
export async function disputesPage() {
  const [orders, statements] = await Promise.all([
    api.getAll('/orders', { status: 'disputed' }),
    api.get('/statements?status=disputed'),
  ]);
  const disputed = orders.filter((o) => o.confirmation === 'disputed');
  return h(
    'div',
    { 'data-test': 'disputes-page' },
    h('h1', {}, t('nav.disputes')),
    h('h2', {}, t('disputes.orders')),
    h(
      'section',
      { class: 'card' },
      table(
        [t('order.id'), t('order.status'), t('disputes.reason')],
        disputed.map((o) =>
          h(
            'tr',
            {},
            h(
              'td',
              {},
              h('a', { href: `#/orders/${encodeURIComponent(o.id)}/evidence` }, shortId(o.id)),
            ),
            h('td', {}, statusBadge(o.status)),
            h('td', {}, o.confirmation_reason || ''),
          ),
        ),
      ),
      'disputed-orders',
    ),
    h('h2', {}, t('disputes.statements')),
    h(
      'section',
      { class: 'card' },
      table(
        STATEMENT_HEADERS(),
        statements.map((s) => statementRow(s, can('resolve_statements') ? resolveForm(s) : null)),
        'disputed-statements',
      ),
    ),
  );
}

function resolveForm(statement) {
  const action = select([
    ['reissue', t('resolve.reissue')],
    ['void', t('resolve.void')],
  ]);
  const gross = textInput({ inputmode: 'decimal', placeholder: '0.00' });
  const reason = textInput();
  const submit = h('button', { type: 'submit', class: 'small' }, t('resolve.submit'));
  const form = h(
    'form',
    { class: 'inline-form', novalidate: true },
    field('action', t('resolve.action'), action),
    field('gross_fen', t('resolve.gross'), gross),
    field('reason', t('form.reason'), reason),
    submit,
  );
  form.addEventListener(
    'submit',
    busy(submit, async () => {
      clearErrors(form);
      const body = { action: action.value, reason: reason.value.trim() };
      if (action.value === 'reissue') {
        const match = gross.value.trim().match(/^(\d+)(?:\.(\d{1,2}))?$/);
        if (!match) return showError(form, 'gross_fen', t('resolve.gross_invalid'));
        body.gross_fen = Number(BigInt(match[1]) * 100n + BigInt((match[2] || '').padEnd(2, '0')));
      }
      if (!requireText(form, 'reason', reason.value)) return undefined;
      try {
        await api.post(`/statements/${encodeURIComponent(statement.id)}/resolve`, body);
        setFlash('ok', t('resolve.done'));
        route();
      } catch (error) {
        showApiError(form, error);
      }
      return undefined;
    }),
  );
  return form;
}
