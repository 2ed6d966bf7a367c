// Numbers, money and times as people read them.
import { lang } from './i18n.js';

/** Integer fen → "1,234.56" yuan, by integer arithmetic (never floats). */
export function yuan(fen) {
  if (fen === null || fen === undefined) return '—';
  let value = BigInt(fen);
  const negative = value < 0n;
  if (negative) value = -value;
  const whole = (value / 100n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const cents = (value % 100n).toString().padStart(2, '0');
  return `${negative ? '−' : ''}¥${whole}.${cents}`;
}

function locale() {
  return lang() === 'zh' ? 'zh-CN' : 'en-GB';
}

/** A date-time (RFC 3339 string or milliseconds) in the browser's time zone. */
export function dateTime(value) {
  if (value === null || value === undefined || value === '') return '—';
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return new Intl.DateTimeFormat(locale(), {
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
  }).format(date);
}

/** Only the time of day, with seconds when asked. */
export function clock(value, seconds = false) {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return '';
  const options = { hour: '2-digit', minute: '2-digit', hour12: false };
  if (seconds) options.second = '2-digit';
  return new Intl.DateTimeFormat(locale(), options).format(date);
}

/** Metres as "850 m" or "4.2 km". */
export function distance(metres) {
  if (metres < 1000) return `${Math.round(metres)} m`;
  if (metres < 100000) return `${(metres / 1000).toFixed(1)} km`;
  return `${Math.round(metres / 1000)} km`;
}

export function bytes(size) {
  if (size === null || size === undefined) return '—';
  if (size < 1024) return `${size} B`;
  if (size < 1024 * 1024) return `${(size / 1024).toFixed(0)} KiB`;
  return `${(size / 1024 / 1024).toFixed(1)} MiB`;
}

/** The first characters of a long id, enough to tell ids apart on a page. */
export function shortId(id) {
  return id ? String(id).slice(0, 8) : '—';
}

export function coordinates(lat, lon) {
  if (typeof lat !== 'number' || typeof lon !== 'number') return '—';
  return `${lat.toFixed(5)}, ${lon.toFixed(5)}`;
}
