// Small coloured labels for states, verdicts and severities.
import { h } from './dom.js';
import { t, has } from './i18n.js';

function badge(kind, value, prefix) {
  if (!value) return null;
  const key = `${prefix}.${value}`;
  return h(
    'span',
    { class: `badge ${kind}-${value}`, 'data-test': `${kind}-badge` },
    has(key) ? t(key) : value,
  );
}

export const statusBadge = (status) => badge('status', status, 'status');
export const verdictBadge = (verdict) => badge('verdict', verdict, 'verdict');
export const severityBadge = (severity) => badge('severity', severity, 'severity');

export function overdueBadge(overdue) {
  return overdue
    ? h('span', { class: 'badge overdue', 'data-test': 'overdue' }, t('queue.overdue'))
    : null;
}
