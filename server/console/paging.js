// Tables of lists. Long lists come a page at a time: the rows of the first page, then a
// button that appends the next page's rows for as long as the server says more follow
// (X-Next-Cursor).
import * as api from './api.js';
import { h } from './dom.js';
import { t } from './i18n.js';

/**
 * Fills `tbody` with the rows of `path` (filtered by `params`), one page now and more on
 * request; `row` draws one item, `onChange(shown, more)` hears how many rows are shown and
 * whether more follow. Answers the first page's items and the "more" control.
 */
export async function pagedRows(tbody, path, params, row, columns, onChange = () => {}) {
  const first = await api.getPage(path, { ...params, limit: 100 });
  const more = h('button', { type: 'button', class: 'small', 'data-test': 'more' }, t('list.more'));
  const foot = h('p', { class: 'more' }, more);
  let next = first.next;
  let shown = 0;
  const show = (items) => {
    for (const item of items) tbody.append(row(item));
    shown += items.length;
    foot.classList.toggle('hidden', !next);
    onChange(shown, Boolean(next));
  };
  if (first.items.length === 0) {
    tbody.append(h('tr', {}, h('td', { colspan: columns, class: 'muted' }, t('list.empty'))));
  }
  show(first.items);
  more.addEventListener('click', async () => {
    more.disabled = true;
    try {
      const page = await api.getPage(path, { ...params, limit: 100, cursor: next });
      next = page.next;
      show(page.items);
    } finally {
      more.disabled = false;
    }
  });
  return { items: first.items, foot };
}

/** A table of `rows` under `headers`, or one row saying the list is empty. */
export function table(headers, rows, test) {
  return h(
    'table',
    { 'data-test': test },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        headers.map((x) => h('th', {}, x)),
      ),
    ),
    h(
      'tbody',
      {},
      rows.length
        ? rows
        : h('tr', {}, h('td', { colspan: headers.length, class: 'muted' }, t('list.empty'))),
    ),
  );
}
