'use strict';
(function () {
  const name = decodeURIComponent(location.pathname.split('/').pop());
  const api = '../api/rings/' + encodeURIComponent(name);
  const $ = id => document.getElementById(id);
  const img = $('picture'), stateEl = $('state'), badge = $('badge');
  document.title = 'framering: ' + name;
  $('name').textContent = name;

  let seq = 0;            // the preview's number of the picture shown
  let shown = null;       // the frame shown: {number, size, format, metaLen, ...}
  let paused = false, resume = null;
  let url = null;         // object URL of the picture shown
  let got = 0, missed = 0;
  const times = [];       // when the last pictures were shown, for the page's rate
  let snapshot = null;    // while paused: the fetch of the shown frame's PNG

  function setState(s, why) {
    stateEl.dataset.state = s;
    stateEl.textContent = s;
    document.body.dataset.state = s;
    const err = $('error');
    err.hidden = !why;
    err.textContent = why || '';
  }

  function kv(table, rows) {
    table.replaceChildren(...rows.map(([k, v, key]) => {
      const tr = el('tr');
      if (v === undefined) {
        tr.className = 'group';
        tr.append(el('th', { colspan: 2 }, k));
        return tr;
      }
      tr.append(el('th', {}, k), el('td', key ? { 'data-key': key } : {}, v));
      return tr;
    }));
  }

  function showFrame(f, ni) {
    $('frame-no').textContent = f.number ? '#' + fmt.num(f.number) : '';
    const rows = [
      ['number', fmt.num(f.number), 'frame'],
      ['size', f.size + ' ' + f.format, 'size'],
      ['age when sent', fmt.ms(f.ageMs), 'age'],
      ['metadata', f.metaLen ? fmt.bytes(f.metaLen) : 'none', 'meta-len'],
    ];
    if (ni) rows.push(['payload', fmt.bytes(ni.len)]);
    else rows.push(['picture', img.naturalWidth + 'x' + img.naturalHeight + ', shown at ' +
                   Math.round(fit() * 100) + ' %', 'shown']);
    kv($('frame'), rows);
  }

  // fit is the scale of the picture on screen (object-fit: contain).
  function fit() {
    if (!img.naturalWidth) return 1;
    return Math.min(img.clientWidth / img.naturalWidth, img.clientHeight / img.naturalHeight);
  }

  let metaBusy = false, metaFor = 0;
  function showMeta(m) {
    metaFor = m.frame;
    $('meta').textContent = m.kind === 'none' ? 'none' : m.text + (m.truncated ? '\n… (' + fmt.bytes(m.len) + ' in all)' : '');
    $('meta-kind').textContent = m.kind === 'none' ? 'none, frame ' + m.frame : m.kind + ', ' + fmt.bytes(m.len) + ', frame ' + m.frame;
  }
  // metaHeader decodes the metadata sent with a picture (base64 JSON).
  function metaHeader(v) {
    if (!v) return null;
    try { return JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(v), c => c.charCodeAt(0)))); }
    catch (e) { return null; }
  }
  // loadMeta fetches metadata too long to come with its picture.
  async function loadMeta(f) {
    if (metaBusy) return;
    metaBusy = true;
    try {
      const resp = await fetch(api + '/meta?frame=' + f.number, { cache: 'no-store' });
      if (resp.ok) showMeta(await resp.json());
      else if (resp.status === 410) $('meta-kind').textContent = 'frame ' + f.number + ' no longer held';
    } catch (e) { /* the next frame tries again */ }
    metaBusy = false;
    if (shown && shown.number !== metaFor && shown.metaLen && !shown.meta) loadMeta(shown);
  }

  async function loop() {
    for (;;) {
      if (paused) { await new Promise(r => { resume = r; }); continue; }
      let resp;
      try {
        resp = await fetch(api + '/frame.jpg?after=' + seq, { cache: 'no-store' });
      } catch (e) {
        setState('error', 'cannot reach the preview server: ' + e.message);
        await sleep(1000);
        continue;
      }
      if (resp.status === 204) continue; // no new frame within the long poll
      if (!resp.ok) {
        setState('error', resp.status + ': ' + (await resp.text()));
        await sleep(1000);
        continue;
      }
      const h = k => resp.headers.get(k);
      const s = +h('X-Preview-Seq'), base = +h('X-Preview-Base');
      const f = { number: +h('X-Frame-Number'), size: h('X-Frame-Size'), format: h('X-Frame-Format'),
                  metaLen: +h('X-Frame-Meta-Len'), ageMs: +h('X-Frame-Age-Ms'), meta: metaHeader(h('X-Frame-Meta')) };
      let ni = null, u = null;
      if (h('X-Frame-Not-Image')) ni = await resp.json();
      else {
        // Decode off screen: the shown picture changes only below, in one
        // step, and not at all if the page was paused meanwhile.
        u = URL.createObjectURL(await resp.blob());
        const next = new Image();
        next.src = u;
        try { await next.decode(); } catch (e) { /* shown anyway once loaded */ }
      }
      if (paused && u) { URL.revokeObjectURL(u); continue; } // paused meanwhile: keep what was shown
      if (seq >= base && s > seq + 1) missed += s - seq - 1;
      seq = s;
      if (u) {
        img.src = u; // decoded above: in the list of available images, so complete at once
        if (url) URL.revokeObjectURL(url);
        url = u;
        img.hidden = false;
        $('notimage').hidden = true;
        img.classList.toggle('pixelated', fit() > 1.5);
        img.dataset.frame = f.number;
      } else {
        img.hidden = true;
        $('notimage').hidden = false;
        $('notimage-why').textContent = 'Frame ' + fmt.num(ni.frame) + ' of ring ' + name + ' is ' + ni.format +
          ', ' + fmt.bytes(ni.len) + ': ' + ni.why + '. Its first bytes:';
        $('notimage-hex').textContent = ni.head_hex;
        $('notimage').dataset.frame = ni.frame;
      }
      shown = f;
      got++;
      times.push(performance.now());
      while (times.length > 1 && times[times.length - 1] - times[0] > 2000) times.shift();
      showFrame(f, ni);
      if (f.meta) showMeta(f.meta);
      else if (f.number !== metaFor) loadMeta(f);
    }
  }

  function pageFPS() {
    if (times.length < 2) return 0;
    return (times.length - 1) * 1000 / (times[times.length - 1] - times[0]);
  }

  function showStats(st) {
    const p = st.preview, c = p.counters, iv = p.interval, r = st.ring;
    if (!paused) setState(p.state, p.error);
    $('since').textContent = p.since ? 'since ' + new Date(p.since).toLocaleTimeString() : '';
    kv($('counters'), [
      ['ring'],
      ['writer', r.state + (r.writer_pid ? ' (pid ' + r.writer_pid + ')' : ''), 'writer'],
      ['published', fmt.fps(r.rate_fps), 'ring-rate'],
      ['newest frame', fmt.num(r.head) + (r.newest_age_ms == null ? '' : ', ' + fmt.ms(r.newest_age_ms) + ' ago'), 'head'],
      ['generation', fmt.num(r.generation), 'generation'],
      ['preview reader (latest mode, max ' + p.max_fps + ' fps)'],
      ['frames in its window', fmt.num(c.window), 'window'],
      ['read', fmt.num(c.read) + ' · ' + fmt.fps(iv.read_fps), 'read'],
      ['skipped by the preview', fmt.num(c.skipped_preview), 'skipped-preview'],
      ['not read, nobody watching', fmt.num(c.skipped_idle), 'skipped-idle'],
      ['ring drops (overwritten, corrupt)', fmt.num(c.ring_drops), 'ring-drops'],
      ['torn reads retried', fmt.num(c.torn_retries), 'torn-retries'],
      ['writer went away', fmt.num(c.writer_gone), 'writer-gone'],
      ['latency, last second (p50 / p99)'],
      ['transport: publish → read', fmt.ms(iv.transport_p50_ms) + ' / ' + fmt.ms(iv.transport_p99_ms), 'transport'],
      ['waited in the ring for the preview', fmt.ms(iv.ring_wait_p50_ms) + ' / ' + fmt.ms(iv.ring_wait_p99_ms), 'ring-wait'],
      ['preview delay: read → sent', fmt.ms(iv.delay_p50_ms) + ' / ' + fmt.ms(iv.delay_p99_ms), 'delay'],
      ['convert + JPEG (p50)', fmt.ms(iv.encode_p50_ms), 'encode'],
      ['pictures'],
      ['encoded', fmt.num(c.encoded) + ' · ' + fmt.fps(iv.encode_fps), 'encoded'],
      ['sent, all clients', fmt.num(c.sent) + ' · ' + fmt.fps(iv.sent_fps), 'sent'],
      ['missed by slow clients', fmt.num(c.client_skips), 'client-skips'],
      ['this page'],
      ['shown', fmt.num(got) + ' · ' + fmt.fps(pageFPS()), 'page-shown'],
      ['missed (page slower than the preview)', fmt.num(missed), 'page-missed'],
    ]);
    document.body.dataset.stats = 'true';
  }

  async function poll() {
    try {
      const resp = await fetch(api, { cache: 'no-store' });
      if (resp.ok) showStats(await resp.json());
    } catch (e) { /* shown by the picture loop */ }
    setTimeout(poll, 1000);
  }

  function fetchSnapshot(n) {
    return fetch(api + '/snapshot.png' + (n ? '?frame=' + n : ''), { cache: 'no-store' });
  }

  function setPaused(p) {
    paused = p;
    $('pause').textContent = p ? 'Resume' : 'Pause';
    $('pause').classList.toggle('on', p);
    badge.hidden = !p;
    if (p) {
      badge.textContent = 'paused' + (shown ? ' at frame ' + fmt.num(shown.number) : '');
      setState('paused');
      // Fetch the shown frame's PNG now, while the preview still holds it.
      snapshot = shown ? fetchSnapshot(shown.number).then(r => r.ok ? r.blob().then(b => ({ blob: b, n: shown.number })) : null)
                       .catch(() => null) : null;
    } else {
      snapshot = null;
      if (resume) { resume(); resume = null; }
    }
  }

  async function download() {
    let got = paused && snapshot ? await snapshot : null;
    let note = '';
    if (!got && shown) {
      const resp = await fetchSnapshot(shown.number);
      if (resp.ok) got = { blob: await resp.blob(), n: shown.number };
      else if (resp.status === 410) note = 'frame ' + shown.number + ' is no longer held; saved the newest instead';
      else if (resp.status === 415) { setState('error', await resp.text()); return; }
    }
    if (!got) {
      const resp = await fetchSnapshot(0);
      if (!resp.ok) { setState('error', 'snapshot: ' + resp.status + ' ' + (await resp.text())); return; }
      got = { blob: await resp.blob(), n: resp.headers.get('X-Frame-Number') };
    }
    const a = el('a', { href: URL.createObjectURL(got.blob), download: name + '-' + got.n + '.png' });
    document.body.append(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
    badge.hidden = false;
    badge.textContent = (paused ? 'paused; ' : '') + 'saved frame ' + got.n + (note ? ' (' + note + ')' : '');
    if (!paused) setTimeout(() => { if (!paused) badge.hidden = true; }, 3000);
  }

  $('pause').addEventListener('click', () => setPaused(!paused));
  $('snap').addEventListener('click', download);
  document.addEventListener('keydown', e => {
    if (e.target.tagName === 'INPUT') return;
    if (e.key === ' ') { e.preventDefault(); setPaused(!paused); }
    if (e.key === 's') download();
  });
  window.addEventListener('resize', () => img.classList.toggle('pixelated', fit() > 1.5));
  loop();
  poll();
})();
