'use strict';
(function () {
  const tbody = document.querySelector('#rings tbody');
  const status = document.getElementById('status');

  function row(r) {
    const tr = el('tr', { 'data-ring': r.name, 'data-state': r.state, 'data-width': r.width,
                          'data-height': r.height, 'data-format': r.format || '' });
    const link = el('a', { href: 'view/' + encodeURIComponent(r.name) }, r.name);
    const name = el('td'); name.append(link);
    const writer = el('td', { class: 'state', 'data-state': r.state, title: r.error || '' },
                      r.state + (r.writer_pid ? ' (pid ' + r.writer_pid + ')' : ''));
    tr.append(name, writer,
      el('td', { class: 'num', 'data-key': 'rate' }, fmt.fps(r.rate_fps)),
      el('td', { 'data-key': 'shape' }, fmt.shape(r)),
      el('td', { 'data-key': 'format' }, r.format || '–'),
      el('td', { 'data-key': 'slots' }, r.slots ? r.slots + ' × ' + fmt.bytes(r.slot_bytes) +
             (r.meta_bytes ? ' + ' + fmt.bytes(r.meta_bytes) + ' meta' : '') : '–'),
      el('td', { class: 'num', 'data-key': 'frames' }, fmt.num(r.frames_total)),
      el('td', { class: 'num', 'data-key': 'generation' }, fmt.num(r.generation)),
      el('td', { class: 'num', 'data-key': 'newest' }, r.newest_age_ms == null ? '–' : fmt.ms(r.newest_age_ms) + ' ago'));
    return tr;
  }

  async function refresh() {
    try {
      const resp = await fetch('api/rings', { cache: 'no-store' });
      if (!resp.ok) throw new Error(resp.status + ' ' + (await resp.text()));
      const idx = await resp.json();
      document.getElementById('dir').textContent = idx.dir;
      tbody.replaceChildren(...idx.rings.map(row));
      document.getElementById('empty').hidden = idx.rings.length > 0;
      status.textContent = idx.rings.length + ' ring' + (idx.rings.length === 1 ? '' : 's') +
        ', updated ' + new Date().toLocaleTimeString();
      document.body.dataset.loaded = 'true';
    } catch (e) {
      status.textContent = 'cannot list the rings: ' + e.message;
    }
    setTimeout(refresh, 1000);
  }
  refresh();
})();
