'use strict';
// Formatting shared by the index and the view.
const fmt = {
  num(n) { return n == null ? '–' : Number(n).toLocaleString('en-US'); },
  fps(v) { return v == null ? '–' : v.toFixed(1) + '/s'; },
  ms(v) {
    if (v == null) return '–';
    if (v < 1) return (v * 1000).toFixed(0) + ' µs';
    if (v < 1000) return v.toFixed(v < 10 ? 2 : 1) + ' ms';
    return (v / 1000).toFixed(1) + ' s';
  },
  bytes(n) {
    if (n >= 1 << 30) return (n / (1 << 30)).toFixed(1) + ' GiB';
    if (n >= 1 << 20) return (n / (1 << 20)).toFixed(1) + ' MiB';
    if (n >= 1 << 10) return (n / (1 << 10)).toFixed(1) + ' KiB';
    return n + ' B';
  },
  shape(r) {
    if (r.format === 'raw') return fmt.bytes(r.frame_bytes);
    return r.width ? r.width + 'x' + r.height + 'x' + r.channels : '–';
  },
};
const sleep = ms => new Promise(r => setTimeout(r, ms));
// el builds an element; text is set as text, never parsed as HTML.
function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith('data-')) e.dataset[k.slice(5)] = v; else e.setAttribute(k, v);
  }
  if (text != null) e.textContent = text;
  return e;
}
