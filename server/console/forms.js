// Forms that say what is wrong next to the field.
import { h } from './dom.js';
import { t, errorText } from './i18n.js';

/** A labelled field: {name, label, input} → the wrapper, with a slot for its error. */
export function field(name, label, input, hint) {
  input.name = name;
  input.id = input.id || `f-${name}-${Math.random().toString(36).slice(2, 8)}`;
  const error = h('p', { class: 'field-error', 'data-error-for': name, role: 'alert' });
  return h(
    'div',
    { class: 'field', 'data-field': name },
    h('label', { for: input.id }, label),
    input,
    hint ? h('p', { class: 'hint' }, hint) : null,
    error,
  );
}

export function textInput(attrs = {}) {
  return h('input', { type: 'text', ...attrs });
}

export function textArea(attrs = {}) {
  return h('textarea', { rows: 3, ...attrs });
}

export function select(options, attrs = {}) {
  return h(
    'select',
    attrs,
    options.map(([value, label]) => h('option', { value }, label)),
  );
}

/** Clears every error shown in `form`. */
export function clearErrors(form) {
  form.querySelectorAll('.field-error, .form-error').forEach((node) => {
    node.textContent = '';
  });
  form.querySelectorAll('.invalid').forEach((node) => node.classList.remove('invalid'));
}

/** Shows one error next to its field, or at the form's foot when no field owns it. */
export function showError(form, name, text) {
  const slot = name ? form.querySelector(`[data-error-for="${CSS.escape(name)}"]`) : null;
  if (slot) {
    slot.textContent = text;
    const wrapper = slot.closest('.field');
    if (wrapper) wrapper.classList.add('invalid');
    const input = wrapper && wrapper.querySelector('input, textarea, select');
    if (input) input.focus();
    return;
  }
  let foot = form.querySelector('.form-error');
  if (!foot) {
    foot = h('p', { class: 'form-error', role: 'alert' });
    form.append(foot);
  }
  foot.textContent = text;
}

/** Shows an API error where it belongs: `fieldOf(code)` names a field when the server does not. */
export function showApiError(form, error, fieldOf = () => null) {
  showError(form, error.field || fieldOf(error.code), errorText(error));
}

/** A submit button that is disabled while `action` runs. */
export function busy(button, action) {
  return async (event) => {
    if (event) event.preventDefault();
    if (button.disabled) return;
    button.disabled = true;
    try {
      await action();
    } finally {
      button.disabled = false;
    }
  };
}

/** Checks the length of a reason locally before the server sees it. */
export function requireText(form, name, value, min = 1) {
  if (value.trim().length >= min) return true;
  showError(form, name, min > 1 ? t('form.min_chars', { min }) : t('form.required'));
  return false;
}
