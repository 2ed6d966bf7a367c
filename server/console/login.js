// Sign-in with password and a TOTP (or recovery) code; the first sign-in of an account
// without an authenticator sets one up and shows the recovery codes once.
import * as api from './api.js';
import { h, replace } from './dom.js';
import { t } from './i18n.js';
import { field, textInput, clearErrors, showApiError, showError, busy } from './forms.js';

const LOGIN_FIELDS = {
  invalid_credentials: 'password',
  invalid_login: 'login',
  account_suspended: 'login',
  too_many_attempts: 'login',
  totp_required: 'totp',
  invalid_totp: 'totp',
  invalid_recovery_code: 'totp',
};

export function loginPage({ onSignedIn }) {
  const container = h('section', { class: 'login-card' });
  replace(container, passwordForm(container, onSignedIn));
  return container;
}

function passwordForm(container, onSignedIn) {
  let useRecovery = false;
  const login = textInput({ autocomplete: 'username', autofocus: true, required: true });
  const password = h('input', {
    type: 'password',
    autocomplete: 'current-password',
    required: true,
  });
  const code = textInput({ autocomplete: 'one-time-code', inputmode: 'numeric' });
  const codeField = field('totp', t('login.totp'), code, t('login.totp_hint'));
  const codeLabel = codeField.querySelector('label');
  const toggle = h(
    'button',
    { type: 'button', class: 'link', 'data-test': 'use-recovery' },
    t('login.use_recovery'),
  );
  toggle.addEventListener('click', () => {
    useRecovery = !useRecovery;
    codeLabel.textContent = useRecovery ? t('login.recovery_code') : t('login.totp');
    code.inputMode = useRecovery ? 'text' : 'numeric';
    toggle.textContent = useRecovery ? t('login.use_totp') : t('login.use_recovery');
  });
  const submit = h('button', { type: 'submit', class: 'primary' }, t('login.submit'));
  const form = h(
    'form',
    { class: 'stack', novalidate: true, 'data-test': 'login-form' },
    h('h1', {}, t('login.title')),
    field('login', t('login.login'), login),
    field('password', t('login.password'), password),
    codeField,
    h('p', {}, toggle),
    submit,
  );
  form.addEventListener(
    'submit',
    busy(submit, async () => {
      clearErrors(form);
      if (!login.value.trim()) return showError(form, 'login', t('form.required'));
      if (!password.value) return showError(form, 'password', t('form.required'));
      const body = { login: login.value.trim(), password: password.value, cookie: true };
      const value = code.value.replace(/\s+/g, '');
      if (value) body[useRecovery ? 'recovery_code' : 'totp'] = value;
      try {
        const session = await api.post('/sessions', body, { quiet: true });
        api.setCsrfToken(session.csrf_token);
        password.value = '';
        if (session.second_factor_setup_required) {
          replace(container, await setupForm(container, onSignedIn));
        } else {
          await onSignedIn();
        }
      } catch (error) {
        const name = error.field === 'recovery_code' ? 'totp' : error.field;
        showApiError(
          form,
          { ...error, field: name, message: error.message, code: error.code },
          (c) => LOGIN_FIELDS[c],
        );
      }
    }),
  );
  return form;
}

async function setupForm(container, onSignedIn) {
  const enrollment = await api.post('/me/totp', {}, { quiet: true });
  const code = textInput({ autocomplete: 'one-time-code', inputmode: 'numeric', required: true });
  const submit = h('button', { type: 'submit', class: 'primary' }, t('setup.confirm'));
  const form = h(
    'form',
    { class: 'stack', novalidate: true, 'data-test': 'totp-setup' },
    h('h1', {}, t('setup.title')),
    h('p', {}, t('setup.intro')),
    h(
      'dl',
      { class: 'facts' },
      h('dt', {}, t('setup.secret')),
      h('dd', {}, h('code', { 'data-test': 'totp-secret' }, enrollment.secret)),
      h('dt', {}, t('setup.url')),
      h('dd', {}, h('code', { class: 'wrap' }, enrollment.otpauth_url)),
    ),
    field('code', t('setup.code'), code),
    submit,
  );
  form.addEventListener(
    'submit',
    busy(submit, async () => {
      clearErrors(form);
      const value = code.value.replace(/\s+/g, '');
      if (!value) return showError(form, 'code', t('form.required'));
      try {
        const enabled = await api.post('/me/totp/confirm', { code: value }, { quiet: true });
        api.setCsrfToken(enabled.csrf_token);
        replace(container, recoveryCodes(enabled.recovery_codes || [], onSignedIn));
      } catch (error) {
        showApiError(form, error, () => 'code');
      }
    }),
  );
  return form;
}

function recoveryCodes(codes, onSignedIn) {
  const next = h(
    'button',
    { type: 'button', class: 'primary', 'data-test': 'recovery-done' },
    t('setup.continue'),
  );
  next.addEventListener('click', () => onSignedIn());
  return h(
    'div',
    { class: 'stack', 'data-test': 'recovery-codes' },
    h('h1', {}, t('setup.recovery_title')),
    h('p', {}, t('setup.recovery_intro')),
    h(
      'ol',
      { class: 'codes' },
      codes.map((c) => h('li', {}, h('code', {}, c))),
    ),
    next,
  );
}
