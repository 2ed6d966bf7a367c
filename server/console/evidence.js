// One order's evidence: photos with their EXIF facts, the trajectory over the site, the
// signatures, notes, the verdict and every finding, and the reviewer's decision.
import * as api from './api.js';
import { h, replace } from './dom.js';
import { t, findingText, has } from './i18n.js';
import { trajectory, signature } from './draw.js';
import { dateTime, bytes, coordinates, distance, shortId } from './format.js';
import {
  field,
  textArea,
  clearErrors,
  showApiError,
  showError,
  busy,
  requireText,
} from './forms.js';
import { can, go, setFlash } from './app.js';
import { statusBadge, verdictBadge, severityBadge } from './badges.js';

/** The page; `orderId` from the route. */
export async function evidencePage(orderId) {
  const evidence = await api.get(`/orders/${encodeURIComponent(orderId)}/evidence`);
  const labels = itemLabels(evidence);
  const selection = new Map();
  const page = h('article', {
    class: 'evidence',
    'data-test': 'evidence-page',
    'data-order': evidence.order_id,
  });
  page.append(
    h(
      'header',
      { class: 'page-head' },
      h('h1', {}, t('evidence.title', { id: shortId(evidence.order_id) })),
      h(
        'div',
        { class: 'badges' },
        statusBadge(evidence.status),
        verdictBadge(evidence.verdict),
        evidence.verification_pending
          ? h('span', { class: 'badge pending' }, t('evidence.pending'))
          : null,
      ),
    ),
    facts(evidence),
    findingsSection(evidence, labels),
    photosSection(evidence, labels, selection),
    trajectorySection(evidence, labels, selection),
    signaturesSection(evidence, selection),
    notesSection(evidence, selection),
    decisionsSection(evidence, labels),
  );
  if (
    can('review_evidence') &&
    ['needs_review', 'verified'].includes(evidence.status) &&
    !evidence.verification_pending
  ) {
    page.append(actionsSection(evidence, selection));
  }
  page.append(overlay());
  return page;
}

/** "Photo 1", "Signature 1", "Note 2", "Trajectory" for item ids. */
function itemLabels(evidence) {
  const labels = new Map();
  (evidence.photos || []).forEach((p, i) => labels.set(p.id, t('evidence.photo_n', { n: i + 1 })));
  (evidence.signatures || []).forEach((p, i) =>
    labels.set(p.id, t('evidence.signature_n', { n: i + 1 })),
  );
  (evidence.notes || []).forEach((p, i) => labels.set(p.id, t('evidence.note_n', { n: i + 1 })));
  labels.set('track', t('evidence.trajectory'));
  return labels;
}

function facts(evidence) {
  const site = evidence.site || {};
  const window = evidence.window || {};
  return h(
    'dl',
    { class: 'facts inline' },
    h('dt', {}, t('evidence.site')),
    h(
      'dd',
      {},
      `${coordinates(site.lat, site.lon)} · ${t('evidence.radius')} ` +
        `${distance(site.radius_m || 0)}${site.datum ? ` · ${site.datum}` : ''}`,
    ),
    h('dt', {}, t('evidence.window')),
    h('dd', {}, `${dateTime(window.start)} – ${dateTime(window.end)}`),
    h('dt', {}, t('evidence.submitted')),
    h('dd', {}, (evidence.submissions || []).map((x) => dateTime(x.at)).join(', ') || '—'),
  );
}

function findingItem(finding, labels) {
  return h(
    'li',
    { class: `finding ${finding.severity}`, 'data-test': 'finding', 'data-code': finding.code },
    severityBadge(finding.severity),
    h('strong', {}, findingText(finding)),
    finding.item && labels.get(finding.item)
      ? h('span', { class: 'item-ref' }, ` · ${labels.get(finding.item)}`)
      : null,
    has(`finding.${finding.code}`) && finding.message
      ? h('p', { class: 'detail' }, finding.message)
      : null,
  );
}

function findingsSection(evidence, labels) {
  const findings = evidence.findings || [];
  const remarks = evidence.remarks || [];
  return h(
    'section',
    { class: 'card', 'data-test': 'findings' },
    h(
      'h2',
      {},
      t('evidence.findings'),
      ' ',
      h('span', { class: 'count' }, String(findings.length)),
    ),
    evidence.verdict
      ? h('p', { class: 'verdict-line' }, t(`verdict_explained.${evidence.verdict}`))
      : null,
    findings.length
      ? h(
          'ul',
          { class: 'findings' },
          findings.map((f) => findingItem(f, labels)),
        )
      : h('p', { class: 'muted' }, t('evidence.no_findings')),
    remarks.length ? h('h3', {}, t('evidence.remarks')) : null,
    remarks.length
      ? h(
          'ul',
          { class: 'findings' },
          remarks.map((r) => remarkItem(r, labels)),
        )
      : null,
  );
}

/** The "has issues" switch every item card carries: a checkbox and a comment. */
function issuePicker(itemId, selection) {
  if (!can('review_evidence')) return null;
  const comment = textArea({
    rows: 2,
    'data-test': 'issue-comment',
    'data-item': itemId,
    placeholder: t('evidence.issue_comment'),
  });
  const commentField = h(
    'div',
    { class: 'issue-comment hidden' },
    comment,
    h('p', { class: 'field-error', 'data-error-for': `item:${itemId}` }),
  );
  const box = h('input', { type: 'checkbox', 'data-test': 'issue-toggle', 'data-item': itemId });
  box.addEventListener('change', () => {
    commentField.classList.toggle('hidden', !box.checked);
    if (box.checked) selection.set(itemId, comment);
    else selection.delete(itemId);
  });
  return h(
    'div',
    { class: 'issue' },
    h('label', { class: 'check' }, box, t('evidence.has_issue')),
    commentField,
  );
}

/**
 * The EXIF facts the server read, in a fixed order; unknown keys are shown as they come. The
 * server reads them when it verifies the evidence, so before that there is nothing to show yet.
 */
function exifFacts(exif, verified) {
  if (!exif) {
    return h('p', { class: 'muted' }, t(verified ? 'evidence.no_exif' : 'evidence.exif_pending'));
  }
  const shown = { ...exif };
  const rows = [];
  const row = (key, value) => {
    if (value === null || value === undefined || value === '') return;
    rows.push(
      h('dt', {}, has(`exif.${key}`) ? t(`exif.${key}`) : key),
      h('dd', { 'data-exif': key }, String(value)),
    );
  };
  if (Number.isFinite(shown.gps_lat) && Number.isFinite(shown.gps_lon))
    row('gps', coordinates(shown.gps_lat, shown.gps_lon));
  if (shown.width && shown.height) row('dimensions', `${shown.width} × ${shown.height}`);
  if (shown.orientation)
    row(
      'orientation',
      has(`orientation.${shown.orientation}`)
        ? t(`orientation.${shown.orientation}`)
        : shown.orientation,
    );
  ['gps_lat', 'gps_lon', 'width', 'height', 'orientation'].forEach((key) => delete shown[key]);
  for (const [key, value] of Object.entries(shown)) {
    row(key, typeof value === 'object' && value !== null ? JSON.stringify(value) : value);
  }
  return h('dl', { class: 'facts exif', 'data-test': 'exif' }, rows);
}

/** An operator's comment on one item. */
function remarkItem(remark, labels) {
  return h(
    'li',
    { class: 'finding remark', 'data-test': 'remark', 'data-item': remark.item },
    h('span', { class: 'badge severity-error' }, t('evidence.remark')),
    h('strong', {}, remark.comment),
    labels.get(remark.item)
      ? h('span', { class: 'item-ref' }, ` · ${labels.get(remark.item)}`)
      : null,
    remark.at ? h('p', { class: 'detail' }, dateTime(remark.at)) : null,
  );
}

function photosSection(evidence, labels, selection) {
  const photos = evidence.photos || [];
  return h(
    'section',
    { class: 'card', 'data-test': 'photos' },
    h('h2', {}, t('evidence.photos'), ' ', h('span', { class: 'count' }, String(photos.length))),
    photos.length === 0 ? h('p', { class: 'muted' }, t('evidence.none')) : null,
    h(
      'div',
      { class: 'photo-grid' },
      photos.map((photo) => {
        const thumb = h('img', {
          src: api.thumbnailUrl(photo.hash),
          alt: labels.get(photo.id),
          loading: 'eager',
          class: 'thumb',
          'data-test': 'photo-thumb',
          'data-photo': photo.id,
        });
        thumb.addEventListener('error', () => thumb.classList.add('broken'));
        const open = h(
          'button',
          { type: 'button', class: 'thumb-button', title: t('evidence.full_size') },
          thumb,
        );
        open.addEventListener('click', () => showOverlay(photo, labels.get(photo.id)));
        const fix = photo.fix;
        return h(
          'div',
          { class: 'photo', 'data-test': 'photo', 'data-photo': photo.id },
          open,
          h(
            'div',
            { class: 'photo-facts' },
            h('h3', {}, labels.get(photo.id)),
            h(
              'dl',
              { class: 'facts' },
              h('dt', {}, t('evidence.captured')),
              h('dd', {}, dateTime(photo.captured_at)),
              h('dt', {}, t('evidence.phone_fix')),
              h(
                'dd',
                {},
                fix
                  ? `${coordinates(fix.lat, fix.lon)} ±${Math.round(fix.accuracy_m || 0)} m` +
                      `${fix.mock ? ` · ${t('evidence.mock')}` : ''}`
                  : '—',
              ),
              h('dt', {}, t('evidence.file')),
              h('dd', {}, `${photo.media_type || '—'} · ${bytes(photo.size)}`),
            ),
            h('h4', {}, t('evidence.exif')),
            exifFacts(photo.exif, Boolean(evidence.verdict)),
            (photo.findings || []).length || (photo.remarks || []).length
              ? h(
                  'ul',
                  { class: 'findings compact' },
                  (photo.findings || []).map((f) => findingItem(f, new Map())),
                  (photo.remarks || []).map((r) => remarkItem(r, new Map())),
                )
              : null,
            issuePicker(photo.id, selection),
          ),
        );
      }),
    ),
  );
}

function trajectorySection(evidence, labels, selection) {
  const track = evidence.track || [];
  const site = evidence.site || {};
  // Sites are stored in WGS-84, like GPS fixes and GPX tracks (a GCJ-02 site was converted).
  const centre = site;
  const fixes = (evidence.photos || [])
    .filter((p) => p.fix)
    .map((p, i) => ({
      id: p.id,
      lat: p.fix.lat,
      lon: p.fix.lon,
      label: String(i + 1),
    }));
  const trackFindings = (evidence.findings || []).filter((f) => f.item === 'track');
  return h(
    'section',
    { class: 'card', 'data-test': 'trajectory-section' },
    h(
      'h2',
      {},
      t('evidence.trajectory'),
      ' ',
      h('span', { class: 'count' }, t('evidence.points', { n: track.length })),
    ),
    track.length === 0 && fixes.length === 0
      ? h('p', { class: 'muted' }, t('evidence.no_track'))
      : null,
    Number.isFinite(centre.lat)
      ? trajectory({ lat: centre.lat, lon: centre.lon, radius_m: site.radius_m }, track, fixes)
      : null,
    h('p', { class: 'hint' }, t('evidence.trajectory_hint')),
    trackFindings.length
      ? h(
          'ul',
          { class: 'findings compact' },
          trackFindings.map((f) => findingItem(f, labels)),
        )
      : null,
    track.length ? issuePicker('track', selection) : null,
  );
}

function signaturesSection(evidence, selection) {
  const signatures = evidence.signatures || [];
  return h(
    'section',
    { class: 'card', 'data-test': 'signatures' },
    h(
      'h2',
      {},
      t('evidence.signatures'),
      ' ',
      h('span', { class: 'count' }, String(signatures.length)),
    ),
    signatures.length === 0 ? h('p', { class: 'muted' }, t('evidence.none')) : null,
    h(
      'div',
      { class: 'signature-list' },
      signatures.map((sig, i) =>
        h(
          'figure',
          { class: 'signature-card', 'data-test': 'signature' },
          signature(sig.strokes || []),
          h(
            'figcaption',
            {},
            `${t('evidence.signature_n', { n: i + 1 })} · ${dateTime(sig.signed_at)}`,
          ),
          issuePicker(sig.id, selection),
        ),
      ),
    ),
  );
}

function notesSection(evidence, selection) {
  const notes = evidence.notes || [];
  return h(
    'section',
    { class: 'card', 'data-test': 'notes' },
    h('h2', {}, t('evidence.notes'), ' ', h('span', { class: 'count' }, String(notes.length))),
    notes.length === 0 ? h('p', { class: 'muted' }, t('evidence.none')) : null,
    h(
      'ul',
      { class: 'notes' },
      notes.map((note, i) =>
        h(
          'li',
          {},
          h(
            'span',
            { class: 'muted' },
            `${t('evidence.note_n', { n: i + 1 })} · ${dateTime(note.at)}`,
          ),
          h('p', {}, note.text),
          issuePicker(note.id, selection),
        ),
      ),
    ),
  );
}

function decisionsSection(evidence, labels) {
  const decisions = evidence.decisions || [];
  return h(
    'section',
    { class: 'card', 'data-test': 'decisions' },
    h('h2', {}, t('evidence.decisions')),
    decisions.length === 0
      ? h('p', { class: 'muted' }, t('evidence.no_decisions'))
      : h(
          'table',
          {},
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              h('th', {}, t('evidence.when')),
              h('th', {}, t('evidence.decision')),
              h('th', {}, t('evidence.reason')),
              h('th', {}, t('evidence.items')),
              h('th', {}, t('evidence.operator')),
            ),
          ),
          h(
            'tbody',
            {},
            decisions.map((d) =>
              h(
                'tr',
                { 'data-test': 'decision-row', 'data-decision': d.decision },
                h('td', {}, dateTime(d.at)),
                h('td', {}, t(`decision.${d.decision}`)),
                h('td', {}, d.reason || ''),
                h(
                  'td',
                  {},
                  (d.items || [])
                    .map((i) => `${labels.get(i.item) || i.item}: ${i.comment}`)
                    .join('; '),
                ),
                h('td', {}, d.operator || '—'),
              ),
            ),
          ),
        ),
  );
}

function actionsSection(evidence, selection) {
  const decision = (value) =>
    h(
      'label',
      { class: 'radio' },
      h('input', { type: 'radio', name: 'decision', value, 'data-test': `decision-${value}` }),
      t(`decision.${value}`),
    );
  const reason = textArea({ 'data-test': 'review-reason' });
  const submit = h(
    'button',
    { type: 'submit', class: 'primary', 'data-test': 'review-submit' },
    t('evidence.record_decision'),
  );
  const form = h(
    'form',
    { class: 'card actions stack', novalidate: true, 'data-test': 'review-form' },
    h('h2', {}, t('evidence.actions')),
    h(
      'div',
      { class: 'field', 'data-field': 'decision' },
      h(
        'div',
        { class: 'radios' },
        decision('approve'),
        decision('has_issues'),
        decision('reject'),
      ),
      h('p', { class: 'field-error', 'data-error-for': 'decision' }),
    ),
    h(
      'div',
      { class: 'field', 'data-field': 'items' },
      h('p', { class: 'hint' }, t('evidence.items_hint')),
      h('p', { class: 'field-error', 'data-error-for': 'items' }),
    ),
    field('reason', t('evidence.reason'), reason, t('evidence.reason_hint')),
    submit,
  );
  form.addEventListener(
    'submit',
    busy(submit, async () => {
      clearErrors(form);
      document.querySelectorAll('.issue .field-error').forEach((n) => {
        n.textContent = '';
      });
      const chosen = form.querySelector('input[name="decision"]:checked');
      if (!chosen) return showError(form, 'decision', t('evidence.choose_decision'));
      if (!requireText(form, 'reason', reason.value)) return undefined;
      const body = { decision: chosen.value, reason: reason.value.trim() };
      if (chosen.value === 'has_issues') {
        if (selection.size === 0) return showError(form, 'items', t('evidence.choose_items'));
        const items = [];
        for (const [item, comment] of selection) {
          if (!comment.value.trim()) {
            const slot = document.querySelector(`[data-error-for="item:${CSS.escape(item)}"]`);
            if (slot) slot.textContent = t('form.required');
            comment.focus();
            return undefined;
          }
          items.push({ item, comment: comment.value.trim() });
        }
        body.items = items;
      }
      try {
        await api.post(`/orders/${encodeURIComponent(evidence.order_id)}/review`, body);
        setFlash('ok', t(`evidence.recorded.${chosen.value}`));
        go(`#/orders/${encodeURIComponent(evidence.order_id)}/evidence`);
      } catch (error) {
        const fieldName = error.field && error.field.startsWith('items') ? 'items' : error.field;
        showApiError(
          form,
          { code: error.code, message: error.message, field: fieldName },
          (code) => (code === 'unknown_item' ? 'items' : null),
        );
      }
    }),
  );
  return form;
}

function overlay() {
  const image = h('img', { class: 'full', alt: '', 'data-test': 'photo-full' });
  const caption = h('p', { class: 'caption' });
  const close = h(
    'button',
    { type: 'button', class: 'close', 'data-test': 'overlay-close' },
    t('evidence.close'),
  );
  const box = h(
    'div',
    { class: 'overlay hidden', id: 'photo-overlay', role: 'dialog', 'aria-modal': 'true' },
    h('div', { class: 'overlay-body' }, close, image, caption),
  );
  const hide = () => {
    box.classList.add('hidden');
    image.removeAttribute('src');
  };
  close.addEventListener('click', hide);
  box.addEventListener('click', (event) => {
    if (event.target === box) hide();
  });
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') hide();
  });
  return box;
}

function showOverlay(photo, label) {
  const box = document.getElementById('photo-overlay');
  if (!box) return;
  const image = box.querySelector('img.full');
  image.src = api.mediaUrl(photo.hash);
  image.alt = label;
  replace(box.querySelector('.caption'), `${label} · ${dateTime(photo.captured_at)}`);
  box.classList.remove('hidden');
  box.querySelector('button.close').focus();
}
